package wheelinstall

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/csv"
	"fmt"
	"hash"
	"io"
	"sort"
	"strings"
)

// recordRow is one line of a RECORD file: path, hash, size. Hash and size
// are kept as written so that unchanged rows are copied verbatim, as pip
// does.
type recordRow struct {
	path, hash, size string
}

// parseRecord reads RECORD text the way Python's csv module does.
func parseRecord(data []byte) ([]recordRow, error) {
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	r.LazyQuotes = true
	var rows []recordRow
	for {
		rec, err := r.Read()
		if err == io.EOF {
			return rows, nil
		}
		if err != nil {
			return nil, err
		}
		var row recordRow
		row.path = rec[0]
		if len(rec) > 1 {
			row.hash = rec[1]
		}
		if len(rec) > 2 {
			row.size = rec[2]
		}
		if row.path == "" {
			return nil, fmt.Errorf("line %d: empty path", len(rows)+1)
		}
		rows = append(rows, row)
	}
}

// recordDigest is a parsed "algo=urlsafe-b64" RECORD hash.
type recordDigest struct {
	algo string
	sum  []byte
}

// parseDigest parses a RECORD hash. Only SHA-2 algorithms are accepted:
// the wheel spec forbids md5 and sha1.
func parseDigest(s string) (recordDigest, error) {
	algo, b64, ok := strings.Cut(s, "=")
	if !ok {
		return recordDigest{}, fmt.Errorf("hash %q is not algorithm=digest", s)
	}
	switch algo {
	case "sha256", "sha384", "sha512":
	default:
		return recordDigest{}, fmt.Errorf("hash algorithm %q is not accepted (want sha256, sha384 or sha512)", algo)
	}
	sum, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(b64, "="))
	if err != nil {
		return recordDigest{}, fmt.Errorf("hash %q: %w", s, err)
	}
	if want := newHash(algo).Size(); len(sum) != want {
		return recordDigest{}, fmt.Errorf("hash %q: %d bytes, want %d", s, len(sum), want)
	}
	return recordDigest{algo: algo, sum: sum}, nil
}

func newHash(algo string) hash.Hash {
	switch algo {
	case "sha384":
		return sha512.New384()
	case "sha512":
		return sha512.New()
	default:
		return sha256.New()
	}
}

// recordHash formats a sha256 sum as RECORD writes it.
func recordHash(sum []byte) string {
	return "sha256=" + base64.RawURLEncoding.EncodeToString(sum)
}

// writeRecord formats rows as Python's csv.writer does with the default
// dialect: minimal quoting and CRLF line ends. Rows are sorted first, as
// pip sorts them.
func writeRecord(rows []recordRow) []byte {
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a.path != b.path {
			return a.path < b.path
		}
		if a.hash != b.hash {
			return a.hash < b.hash
		}
		return a.size < b.size
	})
	var buf bytes.Buffer
	for _, r := range rows {
		for i, f := range []string{r.path, r.hash, r.size} {
			if i > 0 {
				buf.WriteByte(',')
			}
			if strings.ContainsAny(f, ",\"\r\n") {
				buf.WriteByte('"')
				buf.WriteString(strings.ReplaceAll(f, `"`, `""`))
				buf.WriteByte('"')
			} else {
				buf.WriteString(f)
			}
		}
		buf.WriteString("\r\n")
	}
	return buf.Bytes()
}

// relPath returns target relative to the directory base; both are clean
// relative slash paths.
func relPath(base, target string) string {
	bp := strings.Split(base, "/")
	tp := strings.Split(target, "/")
	i := 0
	for i < len(bp) && i < len(tp)-1 && bp[i] == tp[i] {
		i++
	}
	var parts []string
	for range bp[i:] {
		parts = append(parts, "..")
	}
	parts = append(parts, tp[i:]...)
	return strings.Join(parts, "/")
}
