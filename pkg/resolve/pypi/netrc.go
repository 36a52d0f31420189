package pypi

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// netrcEntry is one machine (or the default) of a .netrc file.
type netrcEntry struct {
	login, password string
}

// netrc holds the entries of a .netrc file.
type netrc struct {
	machines map[string]netrcEntry
	def      *netrcEntry
}

// lookup returns the credentials for host (a host name without port is
// also tried), falling back to the default entry.
func (n *netrc) lookup(hostport string) (netrcEntry, bool) {
	if n == nil {
		return netrcEntry{}, false
	}
	if e, ok := n.machines[hostport]; ok {
		return e, true
	}
	host := hostport
	if i := strings.LastIndex(hostport, ":"); i >= 0 && !strings.HasSuffix(hostport, "]") {
		host = hostport[:i]
	}
	if e, ok := n.machines[host]; ok {
		return e, true
	}
	if n.def != nil {
		return *n.def, true
	}
	return netrcEntry{}, false
}

// readNetrc reads and parses the .netrc file at path; a missing file is
// no credentials, not an error.
func readNetrc(path string) (*netrc, error) {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading netrc file: %w", err)
	}
	n, err := parseNetrc(string(data))
	if err != nil {
		return nil, fmt.Errorf("parsing netrc file %s: %w", path, err)
	}
	return n, nil
}

// parseNetrc parses the .netrc format: whitespace-separated tokens
// "machine NAME", "default", "login NAME", "password SECRET", "account X"
// and "macdef NAME" (whose body runs to the next empty line), with "#"
// comments at the start of a line. Error messages never contain tokens.
func parseNetrc(data string) (*netrc, error) {
	n := &netrc{machines: map[string]netrcEntry{}}
	var toks []string
	sc := bufio.NewScanner(strings.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	inMacro := false
	for sc.Scan() {
		line := sc.Text()
		if inMacro {
			if strings.TrimSpace(line) == "" {
				inMacro = false
			}
			continue
		}
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		fields := strings.Fields(line)
		for i := 0; i < len(fields); i++ {
			if fields[i] == "macdef" {
				inMacro = true
				fields = fields[:i]
				break
			}
		}
		toks = append(toks, fields...)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	var cur *netrcEntry
	var curName string
	isDefault := false
	flush := func() {
		if cur == nil {
			return
		}
		if isDefault {
			e := *cur
			n.def = &e
		} else if _, dup := n.machines[curName]; !dup {
			n.machines[curName] = *cur
		}
		cur = nil
	}
	for i := 0; i < len(toks); i++ {
		switch toks[i] {
		case "machine":
			flush()
			if i+1 >= len(toks) {
				return nil, fmt.Errorf("%q without a name", "machine")
			}
			i++
			curName, isDefault, cur = toks[i], false, &netrcEntry{}
		case "default":
			flush()
			curName, isDefault, cur = "", true, &netrcEntry{}
		case "login", "password", "account":
			if i+1 >= len(toks) {
				return nil, fmt.Errorf("%q without a value", toks[i])
			}
			if cur == nil {
				return nil, fmt.Errorf("%q before any machine", toks[i])
			}
			switch toks[i] {
			case "login":
				cur.login = toks[i+1]
			case "password":
				cur.password = toks[i+1]
			}
			i++
		default:
			return nil, fmt.Errorf("unexpected token #%d (expected machine, default, login, password, account or macdef)", i+1)
		}
	}
	flush()
	return n, nil
}
