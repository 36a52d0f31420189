package build

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"time"
)

// jksMagic opens a Java KeyStore (JKS) file.
const jksMagic = 0xFEEDFEED

// jksDefaultPassword is the password of Debian's Java CA keystore
// (ca-certificates-java's storepass, unless /etc/default/cacerts sets
// another).
const jksDefaultPassword = "changeit"

// clampJKS returns the JKS keystore data with every entry's creation time
// set to epoch and the keystore's integrity digest recomputed with
// password: keytool stamps each entry with the time it was added, which
// is all that differs between two runs of ca-certificates-java. Data that
// is not a well-formed JKS whose digest matches password is returned as
// it is, with false.
func clampJKS(data []byte, epoch time.Time, password string) ([]byte, bool) {
	if len(data) < 12+sha1.Size {
		return data, false
	}
	body, sum := data[:len(data)-sha1.Size], data[len(data)-sha1.Size:]
	if !bytes.Equal(jksDigest(body, password), sum) {
		return data, false
	}
	be := binary.BigEndian
	if be.Uint32(body) != jksMagic {
		return data, false
	}
	version := be.Uint32(body[4:])
	if version != 1 && version != 2 {
		return data, false
	}
	out := append([]byte(nil), body...)
	n := be.Uint32(body[8:])
	off := 12
	// need reports whether b holds k more bytes at off.
	need := func(k int) bool { return k >= 0 && off+k <= len(body) }
	skipUTF := func() bool {
		if !need(2) {
			return false
		}
		l := int(be.Uint16(body[off:]))
		off += 2
		if !need(l) {
			return false
		}
		off += l
		return true
	}
	skipBlob := func() bool {
		if !need(4) {
			return false
		}
		l := int(be.Uint32(body[off:]))
		off += 4
		if l < 0 || !need(l) {
			return false
		}
		off += l
		return true
	}
	skipCert := func() bool {
		if version == 2 && !skipUTF() { // the certificate type, "X.509"
			return false
		}
		return skipBlob()
	}
	ms := uint64(epoch.UnixMilli())
	for i := uint32(0); i < n; i++ {
		if !need(4) {
			return data, false
		}
		tag := be.Uint32(body[off:])
		off += 4
		if !skipUTF() || !need(8) { // the alias, then the time
			return data, false
		}
		be.PutUint64(out[off:], ms)
		off += 8
		switch tag {
		case 1: // a private key and its certificate chain
			if !skipBlob() || !need(4) {
				return data, false
			}
			chain := be.Uint32(body[off:])
			off += 4
			for j := uint32(0); j < chain; j++ {
				if !skipCert() {
					return data, false
				}
			}
		case 2: // a trusted certificate
			if !skipCert() {
				return data, false
			}
		default:
			return data, false
		}
	}
	if off != len(body) {
		return data, false
	}
	return append(out, jksDigest(out, password)...), true
}

// jksDigest is a JKS file's integrity digest: SHA-1 over the password as
// UTF-16BE, the words "Mighty Aphrodite" and the file before the digest.
func jksDigest(body []byte, password string) []byte {
	h := sha1.New()
	for _, r := range password {
		h.Write([]byte{byte(r >> 8), byte(r)})
	}
	h.Write([]byte("Mighty Aphrodite"))
	h.Write(body)
	return h.Sum(nil)
}
