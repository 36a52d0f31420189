package aptrepo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/kiln-build/kiln/pkg/auth"
)

// Errors wrapped by FetchRelease, for use with errors.Is.
var (
	// ErrNoSignature means the repository offers no signature at all.
	ErrNoSignature = errors.New("missing signature")
	// ErrUnknownKey means no signature was made by a key in the keyring.
	ErrUnknownKey = errors.New("signed by unknown key")
	// ErrBadSignature means a signature by a trusted key does not verify.
	ErrBadSignature = errors.New("bad signature")
	// ErrExpired means the Release file is past its Valid-Until date, or
	// the signing key or signature has expired.
	ErrExpired = errors.New("expired")
)

// maxReleaseSize bounds the size of InRelease, Release and Release.gpg.
const maxReleaseSize = 64 << 20

// FileHash is one entry of a Release file's SHA256 list.
type FileHash struct {
	// Path is relative to the Release file's directory, such as
	// "main/binary-amd64/Packages.xz".
	Path string
	// Size is the file's length in bytes.
	Size int64
	// SHA256 is the lower-case hex SHA-256 of the file.
	SHA256 string
}

// Release is a parsed (and, when returned by FetchRelease, verified) APT
// Release file.
type Release struct {
	// URL is where the verified file was fetched from; empty when parsed
	// with ParseRelease.
	URL string
	// BaseURL is the directory holding the Release file, ending in "/";
	// Path entries of SHA256 are relative to it.
	BaseURL string
	// ArchiveRoot is the source URI; Packages Filename fields are
	// relative to it.
	ArchiveRoot string
	// Flat reports whether this is a flat repository without components.
	Flat bool
	// Signer is the upper-case hex fingerprint of the primary key whose
	// signature was accepted.
	Signer string

	// Origin, Label, Suite, Codename and Version are the archive's
	// identifying fields, such as "Debian", "Debian", "stable",
	// "bookworm" and "12.11".
	Origin, Label, Suite, Codename, Version string
	// Date is when the archive generated the file; zero if absent.
	Date time.Time
	// ValidUntil is when the file stops being trustworthy; zero if absent.
	ValidUntil time.Time
	// Architectures and Components list what the suite provides.
	Architectures []string
	Components    []string
	// AcquireByHash reports whether indices may be fetched as
	// by-hash/SHA256/<hex>.
	AcquireByHash bool
	// NoSupportForArchitectureAll is the value of the
	// No-Support-for-Architecture-all field ("Packages" on Debian).
	NoSupportForArchitectureAll string
	// SHA256 lists the index files and their checksums, in file order.
	SHA256 []FileHash
}

// place fills in where r, fetched from url in the directory base, is:
// its source and suite.
func (r *Release) place(url, base string, src Source, suite string) {
	r.URL, r.BaseURL, r.ArchiveRoot, r.Flat = url, base, src.URI, IsFlat(suite)
}

// IndexArchs returns the architectures whose Packages indices hold the
// packages for arch: arch, and "all" unless the Release says the native
// index has them (No-Support-for-Architecture-all: Packages) or lists no
// "all" architecture.
func (r *Release) IndexArchs(arch string) []string {
	if r.NoSupportForArchitectureAll == "Packages" || !slices.Contains(r.Architectures, "all") {
		return []string{arch}
	}
	return []string{arch, "all"}
}

// File returns the SHA256 entry for path.
func (r *Release) File(path string) (FileHash, bool) {
	for _, f := range r.SHA256 {
		if f.Path == path {
			return f, true
		}
	}
	return FileHash{}, false
}

var releaseTimeLayouts = []string{
	time.RFC1123,
	time.RFC1123Z,
	"Mon, _2 Jan 2006 15:04:05 MST",
	"Mon, _2 Jan 2006 15:04:05 -0700",
	"Mon, 2 Jan 2006 15:04:05 MST",
	"Mon, 2 Jan 2006 15:04:05 -0700",
}

func parseReleaseTime(v string) (time.Time, error) {
	for _, l := range releaseTimeLayouts {
		if t, err := time.Parse(l, v); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("time %q is not in RFC 1123 form (\"Sat, 10 May 2025 08:47:54 UTC\")", v)
}

// ParseRelease parses the text of an unsigned Release file, or the signed
// text of an InRelease file after its signature has been checked. It does
// no verification and fills in neither URL, BaseURL nor Signer.
func ParseRelease(data []byte) (*Release, error) {
	if bytes.HasPrefix(bytes.TrimSpace(data), []byte("-----BEGIN PGP")) {
		return nil, errors.New("parse Release: input is OpenPGP-armored; verify it and pass the signed text")
	}
	sc := newStanzaScanner(bytes.NewReader(data), false)
	st, err := sc.next()
	if err == io.EOF {
		return nil, errors.New("parse Release: file is empty")
	}
	if err != nil {
		return nil, fmt.Errorf("parse Release: %w", err)
	}
	if _, err := sc.next(); err != io.EOF {
		if err == nil {
			err = errors.New("more than one paragraph")
		}
		return nil, fmt.Errorf("parse Release: %w", err)
	}
	f, _, err := st.fields()
	if err != nil {
		return nil, fmt.Errorf("parse Release: %w", err)
	}
	r := &Release{
		Origin:                      f["origin"],
		Label:                       f["label"],
		Suite:                       f["suite"],
		Codename:                    f["codename"],
		Version:                     f["version"],
		Architectures:               strings.Fields(f["architectures"]),
		Components:                  strings.Fields(f["components"]),
		AcquireByHash:               strings.EqualFold(strings.TrimSpace(f["acquire-by-hash"]), "yes"),
		NoSupportForArchitectureAll: f["no-support-for-architecture-all"],
	}
	if v, ok := f["date"]; ok {
		if r.Date, err = parseReleaseTime(v); err != nil {
			return nil, fmt.Errorf("parse Release: Date: %w", err)
		}
	}
	if v, ok := f["valid-until"]; ok {
		if r.ValidUntil, err = parseReleaseTime(v); err != nil {
			return nil, fmt.Errorf("parse Release: Valid-Until: %w", err)
		}
	}
	sums, ok := f["sha256"]
	if !ok {
		return nil, errors.New("parse Release: no SHA256 field; kiln needs SHA-256 checksums to verify indices (MD5Sum and SHA1 are not accepted)")
	}
	for i, line := range strings.Split(sums, "\n") {
		fs := strings.Fields(line)
		if len(fs) == 0 {
			continue
		}
		if len(fs) != 3 {
			return nil, fmt.Errorf("parse Release: SHA256 entry %d %q: want \"<sha256> <size> <path>\"", i+1, line)
		}
		if !isHex(fs[0], 64) {
			return nil, fmt.Errorf("parse Release: SHA256 entry %d: %q is not a SHA-256 hex digest", i+1, fs[0])
		}
		size, err := strconv.ParseInt(fs[1], 10, 64)
		if err != nil || size < 0 {
			return nil, fmt.Errorf("parse Release: SHA256 entry %d: bad size %q", i+1, fs[1])
		}
		r.SHA256 = append(r.SHA256, FileHash{Path: fs[2], Size: size, SHA256: strings.ToLower(fs[0])})
	}
	return r, nil
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// ReleaseOptions configures FetchRelease.
type ReleaseOptions struct {
	// Now returns the current time, used for Valid-Until and key expiry;
	// nil means time.Now.
	Now func() time.Time
	// AllowExpired accepts a Release file past its Valid-Until date, as
	// served by snapshot mirrors. Signatures must still verify, and the
	// signing key must not have expired.
	AllowExpired bool
}

// ReleaseBaseURL returns the URL of the directory holding suite's Release
// files: URI/dists/suite/ or, for a flat suite, URI/suite.
func ReleaseBaseURL(src Source, suite string) string {
	if IsFlat(suite) {
		if suite == "./" {
			return src.URI + "/"
		}
		return src.URI + "/" + strings.TrimPrefix(suite, "./")
	}
	return src.URI + "/dists/" + suite + "/"
}

// FetchRelease fetches the Release file of suite from src with f, verifies
// its OpenPGP signature against keyring and returns it parsed.
//
// It tries InRelease (clearsigned) first and, only if that file does not
// exist, Release with its detached Release.gpg. It rejects a missing
// signature, a signature by a key not in keyring, a bad signature, an
// expired signing key and, unless opts.AllowExpired, a Release past its
// Valid-Until date. For non-flat suites the file's Suite or Codename must
// equal suite, so one suite cannot be served in place of another.
func FetchRelease(ctx context.Context, f Fetcher, src Source, suite string, keyring openpgp.KeyRing, opts ReleaseOptions) (*Release, error) {
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	cfg := &packet.Config{Time: now}
	base := ReleaseBaseURL(src, suite)

	var (
		url    string
		text   []byte
		signer *openpgp.Entity
	)
	inURL := base + "InRelease"
	data, err := fetchAll(ctx, f, inURL, maxReleaseSize)
	switch {
	case err == nil:
		url = inURL
		text, signer, err = verifyClearsigned(data, keyring, cfg)
		if err != nil {
			return nil, releaseVerifyError(url, err)
		}
	case errors.Is(err, ErrNotFound):
		url = base + "Release"
		data, err := fetchAll(ctx, f, url, maxReleaseSize)
		if err != nil {
			return nil, fmt.Errorf("fetch Release of %s %s: %w", auth.RedactURL(src.URI), suite, err)
		}
		sigURL := url + ".gpg"
		sig, err := fetchAll(ctx, f, sigURL, maxReleaseSize)
		if errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("verify %s: %w: neither %s nor %s exists; the repository is unsigned, and kiln only uses signed repositories", url, ErrNoSignature, inURL, sigURL)
		}
		if err != nil {
			return nil, fmt.Errorf("fetch Release of %s %s: %w", auth.RedactURL(src.URI), suite, err)
		}
		signer, err = verifyDetached(data, sig, keyring, cfg)
		if err != nil {
			return nil, releaseVerifyError(sigURL, err)
		}
		text = data
	default:
		return nil, fmt.Errorf("fetch Release of %s %s: %w", auth.RedactURL(src.URI), suite, err)
	}

	r, err := ParseRelease(text)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	r.place(url, base, src, suite)
	r.Signer = fmt.Sprintf("%X", signer.PrimaryKey.Fingerprint)

	if !r.Flat && r.Suite != suite && r.Codename != suite {
		return nil, fmt.Errorf("%s: Release is for Suite %q, Codename %q, not the requested %q; the mirror is misconfigured or serving another suite", url, r.Suite, r.Codename, suite)
	}
	if !r.ValidUntil.IsZero() && !opts.AllowExpired {
		if t := now(); t.After(r.ValidUntil) {
			return nil, fmt.Errorf("%s: %w: Valid-Until %s is before now (%s); the mirror is stale or the clock is wrong; for a snapshot mirror set AllowExpired", url, ErrExpired, r.ValidUntil.Format(time.RFC3339), t.UTC().Format(time.RFC3339))
		}
	}
	return r, nil
}

func releaseVerifyError(url string, err error) error {
	switch {
	case errors.Is(err, ErrNoSignature):
		return fmt.Errorf("verify %s: %w; kiln only uses signed repositories (InRelease, or Release with Release.gpg)", url, err)
	case errors.Is(err, ErrUnknownKey):
		return fmt.Errorf("verify %s: %w; add the repository's key to the keyring named by Signed-By", url, err)
	case errors.Is(err, ErrExpired):
		return fmt.Errorf("verify %s: %w; update the keyring (for Debian, a newer debian-archive-keyring) or check the clock", url, err)
	default:
		return fmt.Errorf("verify %s: %w; the file was altered or corrupted, retry or use another mirror", url, err)
	}
}

// verifyClearsigned checks a clearsigned InRelease file and returns its
// signed text. Nothing may precede or follow the signed block.
func verifyClearsigned(data []byte, keyring openpgp.KeyRing, cfg *packet.Config) ([]byte, *openpgp.Entity, error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if !bytes.HasPrefix(trimmed, []byte("-----BEGIN PGP SIGNED MESSAGE-----")) {
		return nil, nil, fmt.Errorf("%w: InRelease is not an OpenPGP clearsigned message", ErrNoSignature)
	}
	block, rest := clearsign.Decode(trimmed)
	if block == nil {
		return nil, nil, fmt.Errorf("%w: InRelease has no complete PGP SIGNATURE block", ErrNoSignature)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, nil, fmt.Errorf("%w: InRelease has data after the signature block", ErrBadSignature)
	}
	sig, err := io.ReadAll(block.ArmoredSignature.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: read signature: %v", ErrBadSignature, err)
	}
	signer, err := checkSignatures(block.Bytes, sig, keyring, cfg)
	if err != nil {
		return nil, nil, err
	}
	return block.Plaintext, signer, nil
}

// verifyDetached checks a Release file against Release.gpg, which may be
// armored or binary.
func verifyDetached(signed, sig []byte, keyring openpgp.KeyRing, cfg *packet.Config) (*openpgp.Entity, error) {
	body := sig
	if bytes.HasPrefix(bytes.TrimSpace(sig), []byte("-----BEGIN")) {
		b, err := armor.Decode(bytes.NewReader(sig))
		if err != nil {
			return nil, fmt.Errorf("%w: decode armor: %v", ErrNoSignature, err)
		}
		if b.Type != openpgp.SignatureType {
			return nil, fmt.Errorf("%w: armored block is %q, not %q", ErrNoSignature, b.Type, openpgp.SignatureType)
		}
		if body, err = io.ReadAll(b.Body); err != nil {
			return nil, fmt.Errorf("%w: decode armor: %v", ErrBadSignature, err)
		}
	}
	return checkSignatures(signed, body, keyring, cfg)
}

// singleIssuer restricts a KeyRing to one key ID, so that go-crypto checks
// the signature packet made by that key and not merely the first packet
// whose issuer the keyring knows.
type singleIssuer struct {
	openpgp.KeyRing
	id uint64
}

func (k singleIssuer) KeysByIdUsage(id uint64, usage byte) []openpgp.Key {
	if id != k.id {
		return nil
	}
	return k.KeyRing.KeysByIdUsage(id, usage)
}

func (k singleIssuer) KeysById(id uint64) []openpgp.Key {
	if id != k.id {
		return nil
	}
	return k.KeyRing.KeysById(id)
}

// checkSignatures accepts signed if any signature packet in sigs, made by a
// key in keyring, verifies. Like APT, other signatures are ignored.
func checkSignatures(signed, sigs []byte, keyring openpgp.KeyRing, cfg *packet.Config) (*openpgp.Entity, error) {
	var ids []uint64
	pr := packet.NewReader(bytes.NewReader(sigs))
	for {
		p, err := pr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if len(ids) == 0 {
				return nil, fmt.Errorf("%w: parse signature: %v", ErrBadSignature, err)
			}
			break
		}
		if s, ok := p.(*packet.Signature); ok && s.IssuerKeyId != nil {
			ids = append(ids, *s.IssuerKeyId)
		}
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("%w: signature block holds no signature with an issuer", ErrNoSignature)
	}
	var errs []error
	known := false
	for _, id := range ids {
		if len(keyring.KeysByIdUsage(id, packet.KeyFlagSign)) == 0 {
			continue
		}
		known = true
		_, signer, err := openpgp.VerifyDetachedSignature(singleIssuer{keyring, id}, bytes.NewReader(signed), bytes.NewReader(sigs), cfg)
		if err == nil {
			return signer, nil
		}
		switch {
		case errors.Is(err, pgperrors.ErrKeyExpired):
			errs = append(errs, fmt.Errorf("%w: key %016X expired before %s", ErrExpired, id, cfg.Now().UTC().Format(time.RFC3339)))
		case errors.Is(err, pgperrors.ErrSignatureExpired):
			errs = append(errs, fmt.Errorf("%w: signature by key %016X expired before %s", ErrExpired, id, cfg.Now().UTC().Format(time.RFC3339)))
		case errors.Is(err, pgperrors.ErrKeyRevoked):
			errs = append(errs, fmt.Errorf("%w: key %016X is revoked", ErrBadSignature, id))
		default:
			errs = append(errs, fmt.Errorf("%w: signature by key %016X: %v", ErrBadSignature, id, err))
		}
	}
	if !known {
		hex := make([]string, len(ids))
		for i, id := range ids {
			hex[i] = fmt.Sprintf("%016X", id)
		}
		return nil, fmt.Errorf("%w: no key in the keyring made any of the signatures (issuers %s)", ErrUnknownKey, strings.Join(hex, ", "))
	}
	return nil, errors.Join(errs...)
}
