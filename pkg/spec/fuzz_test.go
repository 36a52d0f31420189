package spec

import (
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary files to Parse and then Validate: neither may
// panic, and every error must be an *Error or name the file.
func FuzzParse(f *testing.F) {
	seeds := []string{
		"name: hello\nregistry: localhost:5000\nbase_image: localhost:5000/debian/python3:bookworm\nsource_root: app\nenv: {GREETING: Hello}\nentrypoint: [\"python3\", \"/root/main.py\"]\n",
		"base_image: scratch\ncopy: {data/model.bin: /opt/model/}\nlabels: {a: b}\ncmd: []\n",
		"base_image: debian\npackages: [numpy==1.26, \"requests[socks]>=2; python_version>'3.8'\"]\npip_index: https://u:p@example.com/simple\npip_extra_index_url: [http://x]\n",
		"base_image: debian\napt_packages: [curl, vim=2:9.0]\napt_sources: [\"deb [signed-by=k.gpg] http://deb.debian.org/debian bookworm main\"]\napt_install_recommends: true\n",
		"apt_pakages: [x]\n",
		"image: ghcr.io/org/x\ntag_format: \"{spec_hash}-dev\"\nplatform: linux/arm64/v8\n",
		"- a\n- b\n",
		"a: &x [*x]\n",
		"env: {A: 1, A: 2}\n",
		"base_image: !!binary aGVsbG8=\n",
		"name:\n  - [[[[]]]]\n",
		"\xef\xbb\xbfname: x\r\n",
		"",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse("kiln.yaml", dir, data)
		if err != nil {
			if !strings.Contains(err.Error(), "kiln.yaml") {
				t.Fatalf("Parse error %q does not name the file", err)
			}
			return
		}
		if s == nil {
			t.Fatal("Parse returned neither a spec nor an error")
		}
		_ = s.Validate()
	})
}
