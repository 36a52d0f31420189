package pypi

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParseMetadata feeds arbitrary METADATA files to ParseMetadata; it
// must not panic, and a result must carry a name and a version.
func FuzzParseMetadata(f *testing.F) {
	for _, s := range []string{
		"Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\nRequires-Python: >=3.7\nRequires-Dist: charset-normalizer (<4,>=2)\nRequires-Dist: PySocks (!=1.5.7,>=1.5.6) ; extra == 'socks'\nProvides-Extra: socks\n\nbody\n",
		"Metadata-Version: 2.3\nName: x\nVersion: 1\nRequires-Dist: y[a,b]>=1; python_version < \"3.10\" and sys_platform == 'linux'\n",
		"Name: x\r\nVersion: 1\r\n\r\n",
		"Name: x\nVersion: not a version\n",
		"Name: x\nVersion: 1\nRequires-Dist: \n  folded\n",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseMetadata(data)
		if err != nil {
			return
		}
		if m == nil {
			t.Fatal("ParseMetadata returned neither metadata nor an error")
		}
	})
}

// FuzzParseRequirements feeds arbitrary requirements files to
// ParseRequirements; it must not panic nor read files outside the ones
// named (the fuzzer cannot check this, but -r of a missing file must
// fail, not hang).
func FuzzParseRequirements(f *testing.F) {
	for _, s := range []string{
		"requests==2.31.0 --hash=sha256:" + strings.Repeat("a", 64) + "\nnumpy>=1.26 ; python_version >= '3.9'\n",
		"--index-url https://u:p@example.com/simple\n--extra-index-url http://x/simple\n--pre\n-c constraints.txt\n",
		"-r other.txt\n# comment\nfoo[bar] @ https://example.com/foo-1.0-py3-none-any.whl\n",
		"./local/pkg-1.0-py3-none-any.whl\nfile:///tmp/x-1-py3-none-any.whl\n",
		"a \\\n  ==1.0 \\\n",
		"-e .\n--no-binary :all:\n",
		"--only-binary=:all: --prefer-binary\n",
		"-r self.txt\n",
	} {
		f.Add(s)
	}
	dir := f.TempDir()
	os.WriteFile(filepath.Join(dir, "other.txt"), []byte("six\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "constraints.txt"), []byte("six<2\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "self.txt"), []byte("-r self.txt\n"), 0o644)
	f.Fuzz(func(t *testing.T, data string) {
		p := filepath.Join(dir, "requirements.txt")
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		_, _, err := ParseRequirements(p)
		if err != nil && !strings.Contains(err.Error(), ".txt") {
			t.Fatalf("error %q does not name the file", err)
		}
	})
}

// FuzzParseIndexPages feeds arbitrary bodies to the PEP 503 (HTML) and
// PEP 691 (JSON) project page parsers; they must not panic and every file
// they return must have a one-element name and an absolute URL without
// credentials.
func FuzzParseIndexPages(f *testing.F) {
	for _, s := range []string{
		`<html><body><a href="../../packages/x-1.0-py3-none-any.whl#sha256=` + strings.Repeat("a", 64) + `" data-requires-python="&gt;=3.8" data-dist-info-metadata="sha256=` + strings.Repeat("b", 64) + `">x-1.0-py3-none-any.whl</a><a href="x-1.0.tar.gz" data-yanked="">x</a></body></html>`,
		`<base href="https://files.example/"><a href="/x-1.0-py3-none-any.whl">`,
		`<a href="javascript:alert(1)">`,
		`{"meta":{"api-version":"1.1"},"name":"x","files":[{"filename":"x-1.0-py3-none-any.whl","url":"https://f/x-1.0-py3-none-any.whl","hashes":{"sha256":"` + strings.Repeat("c", 64) + `"},"requires-python":">=3.8","yanked":"bad","core-metadata":{"sha256":"` + strings.Repeat("d", 64) + `"}}]}`,
		`{"meta":{"api-version":"2.0"},"files":[]}`,
		`{"files":[{"filename":"../../etc/passwd","url":"x"}]}`,
	} {
		f.Add([]byte(s))
	}
	page, _ := url.Parse("https://example.com/simple/x/")
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, parse := range []func(*url.URL, []byte) ([]File, error){parseHTMLPage, parseJSONPage} {
			files, err := parse(page, body)
			if err != nil {
				continue
			}
			for _, fl := range files {
				if !plainFilename(fl.Filename) {
					t.Fatalf("file name %q is not a single path element: %+v", fl.Filename, fl)
				}
				if u, err := url.Parse(fl.URL); err != nil || !u.IsAbs() || u.User != nil {
					t.Fatalf("file URL %q is not absolute and credential-free", fl.URL)
				}
			}
		}
	})
}
