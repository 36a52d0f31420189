package debsolve

import (
	"bufio"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"pault.ag/go/debian/control"
)

// packageFromParagraph converts one control stanza. An Architecture field
// defaults to amd64 to keep fixtures short.
func packageFromParagraph(p *control.Paragraph) Package {
	v := func(k string) string { return strings.TrimSpace(p.Values[k]) }
	pkg := Package{
		Name:         v("Package"),
		Version:      v("Version"),
		Architecture: v("Architecture"),
		MultiArch:    v("Multi-Arch"),
		Depends:      v("Depends"),
		PreDepends:   v("Pre-Depends"),
		Recommends:   v("Recommends"),
		Provides:     v("Provides"),
		Conflicts:    v("Conflicts"),
		Breaks:       v("Breaks"),
		Essential:    v("Essential") == "yes",
	}
	if pkg.Architecture == "" {
		pkg.Architecture = "amd64"
	}
	return pkg
}

// readStanzas parses control-file text. Stanzas with a Status field ending
// in "installed" go to installed, the others to universe.
func readStanzas(t testing.TB, r io.Reader) (universe, installed []Package) {
	t.Helper()
	pr, err := control.NewParagraphReader(bufio.NewReaderSize(r, 1<<20), nil)
	if err != nil {
		t.Fatalf("read stanzas: %v", err)
	}
	for {
		p, err := pr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("read stanza: %v", err)
		}
		pkg := packageFromParagraph(p)
		if st, ok := p.Values["Status"]; ok {
			if strings.HasSuffix(strings.TrimSpace(st), " installed") {
				installed = append(installed, pkg)
			}
			continue
		}
		universe = append(universe, pkg)
	}
	return universe, installed
}

// loadFixture reads testdata/name.control.
func loadFixture(t testing.TB, name string) (universe, installed []Package) {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name+".control"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return readStanzas(t, f)
}

// installList renders a result as "name=version", with ":arch" for
// packages that are not amd64.
func installList(r Result) []string {
	out := make([]string, len(r.Install))
	for i, s := range r.Install {
		out[i] = s.Package.Name
		if s.Package.Architecture != "amd64" {
			out[i] += ":" + s.Package.Architecture
		}
		out[i] += "=" + s.Package.Version
	}
	return out
}

// controlParagraphs reads every stanza of r.
func controlParagraphs(r io.Reader) ([]control.Paragraph, error) {
	pr, err := control.NewParagraphReader(bufio.NewReaderSize(r, 1<<20), nil)
	if err != nil {
		return nil, err
	}
	return pr.All()
}
