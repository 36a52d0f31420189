//go:build linux

package sandbox

import (
	"strings"
	"testing"
)

// TestNotLinuxError: off Linux a spec with commands fails saying the
// sandbox needs Linux, on which platform kiln runs, and what to do.
func TestNotLinuxError(t *testing.T) {
	for _, tc := range []struct{ goos, goarch string }{{"darwin", "arm64"}, {"darwin", "amd64"}} {
		msg := NotLinuxError(tc.goos, tc.goarch).Error()
		for _, w := range []string{"running commands needs Linux", "this kiln runs on " + tc.goos + "/" + tc.goarch, "build this spec on Linux", "apt_packages, packages, source_root and copy build here"} {
			if !strings.Contains(msg, w) {
				t.Errorf("NotLinuxError(%s, %s) = %q, does not contain %q", tc.goos, tc.goarch, msg, w)
			}
		}
	}
	if err := Available(); err != nil {
		t.Errorf("Available() on Linux = %v, want nil", err)
	}
}
