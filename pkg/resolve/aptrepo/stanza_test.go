package aptrepo

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"pault.ag/go/debian/control"
)

// TestFieldsMatchControl checks the fast field parser against
// pault.ag/go/debian/control's ParagraphReader on tricky paragraphs and, when
// present, on the machine's dpkg status.
func TestFieldsMatchControl(t *testing.T) {
	paras := []string{
		"Package: a\nVersion: 1\n",
		"Package: a\nDescription: short\n long line\n .\n  indented\n",
		"Package: a\nConffiles:\n /etc/x 0123\n /etc/y 4567 obsolete\n",
		"Package:  spaced  \nDepends: b (>= 1),\n c | d\n",
		"# comment\nPackage: a\r\nVersion: 2\r\n",
		"Package: a\nEmpty:\nX-Long: " + strings.Repeat("x", 5000) + "\n",
		"Package: a\nTrailing: v \t\n\tcontinued with tab  \n",
		"Package: a\nNoNewlineAtEnd: yes",
	}
	if data, err := os.ReadFile("/var/lib/dpkg/status"); err == nil {
		for _, p := range strings.Split(string(data), "\n\n") {
			if strings.TrimSpace(p) != "" {
				paras = append(paras, p+"\n")
			}
		}
	}
	for _, p := range paras {
		got, order, err := (&stanza{raw: []byte(p)}).fields()
		if err != nil {
			t.Errorf("fields(%q): %v", p, err)
			continue
		}
		pr, err := control.NewParagraphReader(bytes.NewReader([]byte(p)), nil)
		if err != nil {
			t.Fatal(err)
		}
		want, err := pr.Next()
		if err != nil {
			t.Fatalf("control on %q: %v", p, err)
		}
		if !reflect.DeepEqual(order, want.Order) {
			t.Errorf("order of %q: %v, control says %v", p, order, want.Order)
		}
		for _, k := range want.Order {
			if w := strings.TrimRight(want.Values[k], "\n"); got[strings.ToLower(k)] != w {
				t.Errorf("%q field %s = %q, control says %q", filepath.Base(p[:min(len(p), 30)]), k, got[strings.ToLower(k)], w)
			}
		}
	}
	for _, bad := range []string{"no colon here\n", " leading continuation\n", "A: 1\na: 2\n", "# only a comment\n"} {
		if _, _, err := (&stanza{raw: []byte(bad)}).fields(); err == nil {
			t.Errorf("fields(%q) accepted it", bad)
		}
	}
}
