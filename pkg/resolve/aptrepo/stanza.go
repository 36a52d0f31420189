package aptrepo

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
	"unicode"
)

// stanza is one deb822 paragraph as it appeared in its file.
type stanza struct {
	// raw is the text of the paragraph with comment lines removed; every
	// line, including the last, ends in a newline.
	raw []byte
	// line is the 1-based line number of the paragraph's first line.
	line int
	// fieldLines maps lower-cased field names to the line they start on.
	// It is only filled in when the scanner was asked to track lines.
	fieldLines map[string]int
}

// stanzaScanner splits a deb822 stream into paragraphs, checking the syntax
// of every line so that errors can name the line they occur on. The field
// values themselves are parsed by fields, with the rules of
// pault.ag/go/debian/control.
type stanzaScanner struct {
	r          *bufio.Reader
	line       int
	trackLines bool
	buf        bytes.Buffer
}

func newStanzaScanner(r io.Reader, trackLines bool) *stanzaScanner {
	return &stanzaScanner{r: bufio.NewReaderSize(r, 64<<10), trackLines: trackLines}
}

// lineError is a syntax error at a line of a deb822 stream.
type lineError struct {
	line int
	msg  string
}

func (e *lineError) Error() string { return fmt.Sprintf("line %d: %s", e.line, e.msg) }

// readLine returns the next line including its newline. The slice is only
// valid until the next call.
func (s *stanzaScanner) readLine() ([]byte, error) {
	line, err := s.r.ReadSlice('\n')
	if err != bufio.ErrBufferFull {
		return line, err
	}
	long := bytes.Clone(line)
	for err == bufio.ErrBufferFull {
		line, err = s.r.ReadSlice('\n')
		long = append(long, line...)
	}
	return long, err
}

// next returns the next paragraph, or io.EOF when the input is exhausted.
func (s *stanzaScanner) next() (*stanza, error) {
	s.buf.Reset()
	st := &stanza{}
	if s.trackLines {
		st.fieldLines = map[string]int{}
	}
	for {
		line, err := s.readLine()
		if len(line) == 0 && err != nil {
			if err != io.EOF {
				return nil, fmt.Errorf("line %d: %w", s.line+1, err)
			}
			if s.buf.Len() == 0 {
				return nil, io.EOF
			}
			break
		}
		s.line++
		if len(bytes.TrimSpace(line)) == 0 {
			if s.buf.Len() == 0 {
				if err == io.EOF {
					return nil, io.EOF
				}
				continue
			}
			break
		}
		if line[0] == '#' {
			if err == io.EOF {
				if s.buf.Len() == 0 {
					return nil, io.EOF
				}
				break
			}
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if s.buf.Len() == 0 {
				return nil, &lineError{s.line, "continuation line before any field; continuation lines must follow a \"Field: value\" line"}
			}
		} else {
			colon := bytes.IndexByte(line, ':')
			if colon <= 0 {
				return nil, &lineError{s.line, fmt.Sprintf("%q is not a \"Field: value\" line", strings.TrimRight(string(line), "\r\n"))}
			}
			name := line[:colon]
			if !validFieldName(name) {
				return nil, &lineError{s.line, fmt.Sprintf("%q is not a valid field name (printable ASCII without spaces, not starting with \"-\")", name)}
			}
			if s.buf.Len() == 0 {
				st.line = s.line
			}
			if st.fieldLines != nil {
				key := strings.ToLower(string(name))
				if _, dup := st.fieldLines[key]; dup {
					return nil, &lineError{s.line, fmt.Sprintf("duplicate field %q in paragraph starting at line %d", name, st.line)}
				}
				st.fieldLines[key] = s.line
			}
		}
		s.buf.Write(line)
		if line[len(line)-1] != '\n' {
			s.buf.WriteByte('\n')
		}
		if err == io.EOF {
			break
		}
	}
	st.raw = bytes.Clone(s.buf.Bytes())
	return st, nil
}

// validFieldName reports whether name is a deb822 field name as Debian
// Policy 5.1 defines it: U+0021 to U+007E except ':', not starting with '#'
// or '-'.
func validFieldName(name []byte) bool {
	if len(name) == 0 || name[0] == '-' || name[0] == '#' {
		return false
	}
	for _, c := range name {
		if c < 0x21 || c > 0x7e || c == ':' {
			return false
		}
	}
	return true
}

// fields parses the paragraph and returns its fields keyed by lower-cased
// name, plus the names in file order. It follows the rules of
// pault.ag/go/debian/control's ParagraphReader (continuation lines lose
// their first blank, " ." is an empty line, values are trimmed), without its
// per-paragraph buffers: a Packages index has tens of thousands of
// paragraphs, and this is the hot path of a cold build.
func (st *stanza) fields() (map[string]string, []string, error) {
	m := make(map[string]string, 24)
	var order []string
	var lastKey string
	var cont strings.Builder // continuation lines of lastKey
	flush := func() {
		if lastKey == "" || cont.Len() == 0 {
			return
		}
		lk := strings.ToLower(lastKey)
		v := m[lk]
		if v != "" && !strings.HasSuffix(v, "\n") {
			v += "\n"
		}
		m[lk] = strings.TrimRight(v+cont.String(), "\n")
		cont.Reset()
	}
	data := st.raw
	for len(data) > 0 {
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		switch {
		case len(line) == 0:
			continue
		case line[0] == '#':
			continue
		case line[0] == ' ' || line[0] == '\t':
			if lastKey == "" {
				return nil, nil, &lineError{st.line, fmt.Sprintf("Bad line: '%s' has no ':'", line)}
			}
			c := strings.TrimRightFunc(string(line[1:]), unicode.IsSpace)
			if c == "." {
				c = ""
			}
			cont.WriteString(c)
			cont.WriteByte('\n')
			continue
		}
		flush()
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return nil, nil, &lineError{st.line, fmt.Sprintf("Bad line: '%s' has no ':'", line)}
		}
		lastKey = strings.TrimSpace(string(k))
		lk := strings.ToLower(lastKey)
		if _, dup := m[lk]; dup {
			return nil, nil, &lineError{st.line, fmt.Sprintf("duplicate field %q", lastKey)}
		}
		m[lk] = strings.TrimSpace(string(v))
		order = append(order, lastKey)
	}
	flush()
	if len(order) == 0 {
		return nil, nil, &lineError{st.line, "empty paragraph"}
	}
	return m, order, nil
}
