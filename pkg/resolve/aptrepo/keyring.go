package aptrepo

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/kiln-build/kiln/pkg/auth"
)

// ErrNoSignedBy is returned by Source.Keyring when the source names no
// keyring.
var ErrNoSignedBy = errors.New("source has no Signed-By keyring")

const armorKeyBlock = "-----BEGIN PGP PUBLIC KEY BLOCK-----"

// ReadKeyring parses an OpenPGP keyring in either the binary form (".gpg",
// as in /usr/share/keyrings/debian-archive-keyring.gpg) or the ASCII-armored
// form (".asc"), which may hold several concatenated key blocks. name is
// used in error messages only. Keys using algorithms go-crypto does not
// support are skipped; a keyring with no usable key is an error.
func ReadKeyring(name string, data []byte) (openpgp.EntityList, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, fmt.Errorf("read keyring %s: file is empty; point Signed-By at an exported public key", name)
	}
	if len(data) >= 12 && string(data[8:12]) == "KBXf" {
		return nil, fmt.Errorf("read keyring %s: file is a GnuPG keybox, not a keyring; convert it with \"gpg --no-default-keyring --keyring %s --export > key.gpg\"", name, name)
	}
	var el openpgp.EntityList
	if bytes.HasPrefix(trimmed, []byte("-----BEGIN PGP")) {
		text := string(trimmed)
		if !strings.Contains(text, armorKeyBlock) {
			return nil, fmt.Errorf("read keyring %s: armored file holds no %q; it may be a private key or a signature", name, armorKeyBlock)
		}
		for _, part := range strings.Split(text, armorKeyBlock)[1:] {
			keys, err := openpgp.ReadArmoredKeyRing(strings.NewReader(armorKeyBlock + part))
			if err != nil {
				return nil, fmt.Errorf("read keyring %s: %w", name, err)
			}
			el = append(el, keys...)
		}
	} else {
		keys, err := openpgp.ReadKeyRing(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("read keyring %s: %w", name, err)
		}
		el = keys
	}
	if len(el) == 0 {
		return nil, fmt.Errorf("read keyring %s: no usable public keys", name)
	}
	return el, nil
}

// LoadKeyring reads the keyring file at path; see ReadKeyring.
func LoadKeyring(path string) (openpgp.EntityList, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read keyring: %w", err)
	}
	return ReadKeyring(path, data)
}

// Keyring loads the keys named by the source's Signed-By: an inline armored
// key block, or one or more keyring paths separated by commas or spaces.
// It returns an error wrapping ErrNoSignedBy when Signed-By is empty.
func (s Source) Keyring() (openpgp.EntityList, error) {
	sb := strings.TrimSpace(s.SignedBy)
	if sb == "" {
		return nil, fmt.Errorf("source %s (%s): %w; add signed-by=/usr/share/keyrings/<name>.gpg (or a deb822 Signed-By field)", auth.RedactURL(s.URI), s.Location, ErrNoSignedBy)
	}
	if strings.HasPrefix(sb, "-----BEGIN PGP") {
		el, err := ReadKeyring("inline Signed-By of "+s.Location, []byte(sb))
		if err != nil {
			return nil, err
		}
		return el, nil
	}
	var el openpgp.EntityList
	for _, p := range splitList(sb) {
		if !strings.Contains(p, "/") {
			return nil, fmt.Errorf("source %s (%s): Signed-By %q is a fingerprint, which kiln does not support; point Signed-By at the keyring file instead", auth.RedactURL(s.URI), s.Location, p)
		}
		keys, err := LoadKeyring(p)
		if err != nil {
			return nil, fmt.Errorf("source %s (%s): %w", auth.RedactURL(s.URI), s.Location, err)
		}
		el = append(el, keys...)
	}
	return el, nil
}
