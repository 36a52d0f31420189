package build

import (
	"errors"
	"fmt"

	"github.com/kiln-build/kiln/pkg/cache"
	"github.com/kiln-build/kiln/pkg/resolve/pypi"
)

// lockRegenerate is what to do about a download that kiln.lock's pin does
// not match.
const lockRegenerate = "if kiln.lock was edited, regenerate it with kiln lock; otherwise the mirror serves another file than when the lock was made"

// lockPinned rewrites the error of a download that does not match its pin
// when the pin came from kiln.lock (--locked), so that it names kiln.lock,
// not the index, as where the expected size and hash came from. Other
// errors are returned as they are.
func lockPinned(err error) error {
	var me *cache.MismatchError
	if errors.As(err, &me) {
		if me.WantSize > 0 && me.GotSize != me.WantSize {
			return fmt.Errorf("fetch %s: got %d bytes (sha256:%s), which does not match the size kiln.lock pins (%d bytes, sha256:%s); %s", me.Name, me.GotSize, me.Got, me.WantSize, me.Want, lockRegenerate)
		}
		return fmt.Errorf("fetch %s: got sha256:%s, which does not match the sha256 kiln.lock pins (sha256:%s); %s", me.Name, me.Got, me.Want, lockRegenerate)
	}
	var he *pypi.HashMismatchError
	if errors.As(err, &he) {
		return fmt.Errorf("fetch %s from %s: got sha256:%s, which does not match the sha256 kiln.lock pins (sha256:%s); %s", he.What, he.URL, he.Got, he.Want, lockRegenerate)
	}
	return err
}
