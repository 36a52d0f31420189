package lock

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRoundTripAndErrors(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, FileName)
	l := &Lock{Platform: "linux/amd64", Parent: Parent{Ref: "r/p:1", Digest: "sha256:" + strings.Repeat("a", 64)},
		Debs: []Deb{{Name: "git", Version: "1:2.39", Architecture: "amd64", SHA256: strings.Repeat("b", 64), Size: 3, URL: "http://m/pool/git.deb"}}}
	if err := Write(p, l); err != nil {
		t.Fatal(err)
	}
	got, err := Read(p)
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := l.Digest()
	d2, _ := got.Digest()
	if d1 != d2 || got.Debs[0].Version != "1:2.39" {
		t.Errorf("round trip changed the lock: %+v", got)
	}
	got.Debs[0].Version = "1:2.40"
	if d3, _ := got.Digest(); d3 == d1 {
		t.Error("a changed pin kept the digest")
	}
	for name, content := range map[string]string{
		"unknown field":         `{"version":1,"parent":{"digest":"x"},"extra":1}`,
		"old version":           `{"version":0,"parent":{"digest":"x"}}`,
		"no parent":             `{"version":1}`,
		"bad deb":               `{"version":1,"parent":{"digest":"x"},"debs":[{"name":"git"}]}`,
		"not json":              `debs: [git]`,
		"bad built_from":        `{"version":1,"parent":{"digest":"x"},"wheels":[{"name":"s","filename":"s-1-py3-none-any.whl","url":"file:///c/s","sha256":"` + strings.Repeat("c", 64) + `","built_from":{"filename":"s-1.tar.gz"}}]}`,
		"bad build requirement": `{"version":1,"parent":{"digest":"x"},"wheels":[{"name":"s","filename":"s-1-py3-none-any.whl","url":"file:///c/s","sha256":"` + strings.Repeat("c", 64) + `","built_from":{"filename":"s-1.tar.gz","url":"http://i/s-1.tar.gz","requires":[{"name":"setuptools","filename":"setuptools-1-py3-none-any.whl","url":"http://i/setuptools-1-py3-none-any.whl","sha256":"short"}]}}]}`,
	} {
		os.WriteFile(p, []byte(content), 0o644)
		if _, err := Read(p); err == nil || !strings.Contains(err.Error(), "kiln lock") {
			t.Errorf("%s: Read = %v, want an error telling to run kiln lock", name, err)
		}
	}
	if _, err := Read(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "run kiln lock") {
		t.Errorf("missing lock: %v", err)
	}
}

func TestStepsRoundTripAndErrors(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, FileName)
	key := strings.Repeat("c", 64)
	l := &Lock{Platform: "linux/amd64", Parent: Parent{Ref: "r/p:1", Digest: "sha256:" + strings.Repeat("a", 64)},
		Steps: []Step{{Name: "code", Key: key, Layers: []string{"sha256:" + strings.Repeat("d", 64)}}}}
	if err := Write(p, l); err != nil {
		t.Fatal(err)
	}
	got, err := Read(p)
	if err != nil {
		t.Fatal(err)
	}
	if st, ok := got.Step(key); !ok || st.Layers[0] != l.Steps[0].Layers[0] {
		t.Errorf("Step(%s) = %+v, %v after a round trip", key, st, ok)
	}
	if _, ok := got.Step(strings.Repeat("e", 64)); ok {
		t.Error("Step found a key the lock does not pin")
	}
	for name, step := range map[string]string{
		"no key":     `{"name":"code","layers":[]}`,
		"short key":  `{"name":"code","key":"abc","layers":[]}`,
		"bad digest": `{"name":"code","key":"` + key + `","layers":["sha256:xyz"]}`,
		"no algo":    `{"name":"code","key":"` + key + `","layers":["` + strings.Repeat("d", 64) + `"]}`,
	} {
		os.WriteFile(p, []byte(`{"version":1,"parent":{"digest":"sha256:`+strings.Repeat("a", 64)+`"},"steps":[`+step+`]}`), 0o644)
		if _, err := Read(p); err == nil || !strings.Contains(err.Error(), "--with-layers") {
			t.Errorf("%s: Read = %v, want an error telling to run kiln lock --with-layers", name, err)
		}
	}
}

// TestSeveralPlatforms: a lock for several platforms holds one lock per
// platform; ForPlatform finds each, and a platform it lacks is stale.
func TestSeveralPlatforms(t *testing.T) {
	one := func(plat, hexd string) string {
		return `{"version":1,"platform":"` + plat + `","parent":{"ref":"r/p:1","digest":"sha256:` + strings.Repeat(hexd, 64) + `"}}`
	}
	good := `{"version":1,"platform":"linux/amd64,linux/arm64","parent":{"ref":"","digest":""},"platforms":[` + one("linux/amd64", "a") + `,` + one("linux/arm64", "b") + `]}`
	l, err := Parse([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	for plat, want := range map[string]string{"linux/amd64": "a", "linux/arm64": "b"} {
		sub, err := l.ForPlatform(plat)
		if err != nil {
			t.Fatalf("ForPlatform(%s): %v", plat, err)
		}
		if sub.Parent.Digest != "sha256:"+strings.Repeat(want, 64) {
			t.Errorf("ForPlatform(%s) parent %s", plat, sub.Parent.Digest)
		}
	}
	if _, err := l.ForPlatform("linux/riscv64"); err == nil || !strings.Contains(err.Error(), "linux/riscv64") || !strings.Contains(err.Error(), "kiln lock") {
		t.Errorf("ForPlatform(linux/riscv64) = %v, want a stale-lock error naming it", err)
	}
	single, err := Parse([]byte(one("linux/amd64", "c")))
	if err != nil {
		t.Fatal(err)
	}
	if sub, err := single.ForPlatform("linux/amd64"); err != nil || sub != single {
		t.Errorf("ForPlatform of a one-platform lock = %v, %v; want the lock itself", sub, err)
	}
	if _, err := single.ForPlatform("linux/arm64"); err == nil {
		t.Error("a linux/amd64 lock gave pins for linux/arm64")
	}
	for _, tc := range []struct{ name, body, want string }{
		{"pins beside platforms", `{"version":1,"platform":"linux/amd64,linux/arm64","parent":{"ref":"x","digest":"sha256:` + strings.Repeat("a", 64) + `"},"platforms":[` + one("linux/amd64", "a") + `,` + one("linux/arm64", "b") + `]}`, "nothing beside"},
		{"list disagrees", `{"version":1,"platform":"linux/amd64","platforms":[` + one("linux/amd64", "a") + `,` + one("linux/arm64", "b") + `]}`, "platforms holds linux/amd64,linux/arm64"},
		{"bad inner digest", `{"version":1,"platform":"linux/amd64,linux/arm64","platforms":[` + one("linux/amd64", "a") + `,` + one("linux/arm64", "z") + `]}`, "(linux/arm64)"},
		{"nested", `{"version":1,"platform":"linux/amd64","platforms":[{"version":1,"platform":"linux/amd64,linux/arm64","platforms":[]}]}`, "not the lock of one platform"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Parse([]byte(tc.body)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestBuiltFromRoundTrip: a wheel kiln built keeps its sdist and build
// requirements through a write and a read.
func TestBuiltFromRoundTrip(t *testing.T) {
	p := filepath.Join(t.TempDir(), FileName)
	req := Wheel{Name: "setuptools", Version: "66.1.1", Filename: "setuptools-66.1.1-py3-none-any.whl", URL: "http://i/setuptools-66.1.1-py3-none-any.whl", SHA256: strings.Repeat("d", 64), Size: 9}
	l := &Lock{Parent: Parent{Ref: "r/p:1", Digest: "sha256:" + strings.Repeat("a", 64)}, Wheels: []Wheel{{
		Name: "simple", Version: "2.0", Filename: "simple-2.0-py3-none-any.whl", URL: "file:///c/blobs/sha256/x", SHA256: strings.Repeat("c", 64), Size: 3,
		BuiltFrom: &Sdist{Filename: "simple-2.0.tar.gz", URL: "http://i/simple-2.0.tar.gz", SHA256: strings.Repeat("e", 64), Requires: []Wheel{req}},
	}}}
	if err := Write(p, l); err != nil {
		t.Fatal(err)
	}
	got, err := Read(p)
	if err != nil {
		t.Fatal(err)
	}
	if sd := got.Wheels[0].BuiltFrom; sd == nil || len(sd.Requires) != 1 || sd.Requires[0] != req || sd.SHA256 != strings.Repeat("e", 64) {
		t.Errorf("round trip lost the build inputs: %+v", got.Wheels[0].BuiltFrom)
	}
}
