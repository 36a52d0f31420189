package spec

import (
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"testing"
)

// TestNormalizedGolden pins the normalised form (and so the tags) of
// examples/hello and a few specs: deriving it from the field table must
// not change the tag of any existing spec.
func TestNormalizedGolden(t *testing.T) {
	hello, err := Load(filepath.Join("..", "..", "examples", "hello", "kiln.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	specs := []struct {
		name string
		s    *Spec
		want string
	}{
		{"examples/hello", hello, ""},
	}
	for _, y := range []struct{ name, yaml string }{
		{"minimal", "name: a\nbase_image: debian:bookworm\n"},
		{"everything", "name: a\nregistry: r.example/x\ntag_format: '{spec_hash}'\nbase_image: debian:bookworm\nplatform: linux/arm64\n" +
			"env: {A: '1', B: '<&>'}\ncopy: {a.txt: /opt/a/}\nentrypoint: [\"/bin/sh\", \"-c\"]\ncmd: []\nworkdir: /srv\nuser: '1000:1000'\n" +
			"labels: {x: y}\ncache_from: r.example/x:cache\npython_version: '3.11'\npackages: [flask>=3, requests]\n" +
			"pip_index: https://user:pw@pypi.example/simple\npip_extra_index_url: [https://extra.example/simple]\n" +
			"apt_packages: [jq, curl=7.88]\napt_sources: [\"deb [signed-by=k.asc] http://deb.example/debian stable main\"]\n" +
			"apt_install_recommends: true\napt_allow_expired: true\nrequirements: r.txt\nsource_root: app\ncommands: [\"true\"]\n"},
		{"empty lists", "name: a\nbase_image: scratch\nenv: {}\npackages: []\napt_packages: []\nentrypoint: []\n"},
	} {
		s, err := Parse("kiln.yaml", t.TempDir(), []byte(y.yaml))
		if err != nil {
			t.Fatalf("%s: %v", y.name, err)
		}
		specs = append(specs, struct {
			name string
			s    *Spec
			want string
		}{y.name, s, ""})
	}
	golden := map[string]string{
		"examples/hello": "b71608d5b06330df4b1d61b95a9f97f34da1394221a88db2650a0adadc1bdee9",
		"minimal":        "72d56f3fdd425500a54613b6cd89500604d15606e0e0c3d805909a4595007669",
		"everything":     "bf12b8e6cd10f23f7cac26c9fc1d6bed6b60988b439d37253a5c161165dd63d3",
		"empty lists":    "cacde4a095d4016490fab4027993b96d398b8fe240380f73e5ecc08ff1b21365",
	}
	for _, tc := range specs {
		sum := sha256.Sum256(tc.s.Normalized())
		got := hex.EncodeToString(sum[:])
		if want := golden[tc.name]; got != want {
			t.Errorf("%s: normalised form %s, sha256 %s; want %s", tc.name, tc.s.Normalized(), got, want)
		}
	}
}

// TestEveryKeySaysHowItIsHashed: the spec hash is derived from the field
// table alone, so every key must say whether and how it enters it.
func TestEveryKeySaysHowItIsHashed(t *testing.T) {
	for _, f := range fields {
		if f.content == contentUnset {
			t.Errorf("spec key %s has no content rule: say how it enters the spec hash (Normalized)", f.key)
		}
	}
}
