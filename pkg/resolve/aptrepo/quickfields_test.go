package aptrepo

import (
	"bytes"
	"strings"
	"testing"
)

// checkQuick fails t when packageReader.quick accepts a stanza of data but
// gives a kept field another value, or presence, than stanza.fields.
func checkQuick(t *testing.T, data []byte) (quick, slow int) {
	t.Helper()
	sc := newStanzaScanner(bytes.NewReader(data), false)
	r := newPackageReader()
	for {
		st, err := sc.next()
		if err != nil {
			return quick, slow
		}
		r.k = keptFields{}
		if !r.quick(st.raw) {
			slow++
			continue
		}
		quick++
		f, _, err := st.fields()
		if err != nil {
			t.Fatalf("quick accepted a stanza fields rejects (%v):\n%s", err, st.raw)
		}
		for name, i := range keptNames {
			v, ok := f[name]
			if has := r.k.has&(1<<i) != 0; has != ok || string(r.k.v[i]) != v {
				t.Fatalf("field %s: quick gives %q (present %t), fields %q (present %t), in:\n%s", name, r.k.v[i], has, v, ok, st.raw)
			}
		}
	}
}

// TestQuickFields checks that the quick path reads plain stanzas as
// stanza.fields does, and leaves every unusual one to it.
func TestQuickFields(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	plain := "Package: a\nVersion: 1.0\nArchitecture: amd64\nFilename: pool/a.deb\nSize: 10\nSHA256: " + sum + "\n"
	tests := []struct {
		name  string
		in    string
		quick bool
	}{
		{"plain", plain, true},
		{"the test index", testPackages, true},
		{"description continues", plain + "Description: x\n more\n .\n end\n", true},
		{"upper-case names", "PACKAGE: a\nvErSiOn: 1\nMULTI-ARCH: same\n", true},
		{"blanks around values", "Package:   a  \nDepends:\t b (>= 1) \nEssential: YES\n", true},
		{"empty value", "Package: a\nDepends:\nProvides: \n", true},
		{"kept field continues", "Package: a\nDepends: b,\n c\n", false},
		{"carriage returns", "Package: a\r\nVersion: 1\r\n", false},
		{"repeated kept field", "Package: a\nPackage: b\n", false},
		{"repeated kept field, other case", "Package: a\npackage: b\n", false},
		{"repeated other field", "Package: a\nTag: x\nTag: y\n", false},
		{"repeated other field, other case", "Package: a\nTag: x\nTAG: y\n", false},
		{"long field name", "Package: a\n" + strings.Repeat("X", 40) + ": y\n", false},
		{"unicode blank in value", "Package: a\u00a0\nVersion: \u20281\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			quick, slow := checkQuick(t, []byte(tt.in))
			if got := quick > 0 && slow == 0; got != tt.quick {
				t.Errorf("quick read %d stanzas, left %d to fields; want quick %t", quick, slow, tt.quick)
			}
		})
	}
}

// FuzzQuickFields checks on arbitrary stanzas that whatever the quick path
// accepts, it reads as stanza.fields does.
func FuzzQuickFields(f *testing.F) {
	for _, s := range []string{
		testPackages,
		"Package: a\nDepends: b,\n c\nTag: x\ntag: y\n",
		"PACKAGE: a\r\nSize: 1\n\nPackage: b\n Description\n",
		"Package: a\u00a0\nVersion: \u20281\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkQuick(t, data) })
}
