package wheeltag

import (
	"errors"
	"strings"
	"testing"
)

func TestParseFilename(t *testing.T) {
	f, err := ParseFilename("Scikit_Learn-1.4.0-1abc-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl")
	if err != nil {
		t.Fatal(err)
	}
	if f.Name != "scikit-learn" || f.Version.String() != "1.4.0" || f.Build != (BuildTag{1, "abc", true}) || len(f.Tags) != 2 {
		t.Fatalf("got %+v", f)
	}
	if f.Tags[0] != (Tag{"cp311", "cp311", "manylinux_2_17_x86_64"}) {
		t.Errorf("tags = %v", f.Tags)
	}
	tests := []struct{ in, want string }{
		{"foo-1.0-py3-none-any.zip", "extension"},
		{"foo-1.0-none-any.whl", "5 or 6"},
		{"foo__bar-1.0-py3-none-any.whl", "single '_'"},
		{"foo.bar!-1.0-py3-none-any.whl", "project name"},
		{"foo-1.0.x-py3-none-any.whl", "not a PEP 440 version"},
		{"foo-1.0-abc-py3-none-any.whl", "start with a digit"},
	}
	for _, tt := range tests {
		_, err := ParseFilename(tt.in)
		var ife *InvalidFilenameError
		if !errors.As(err, &ife) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.in) {
			t.Errorf("ParseFilename(%q) error = %v, want mention of %q", tt.in, err, tt.want)
		}
	}
	if !(BuildTag{}).Less(BuildTag{Number: 0, Set: true}) || !(BuildTag{1, "", true}).Less(BuildTag{2, "", true}) {
		t.Error("BuildTag.Less order wrong")
	}
}

func TestTargetTags(t *testing.T) {
	bookworm := Target{PythonMajor: 3, PythonMinor: 11, Arch: "x86_64", Libc: Glibc, LibcMajor: 2, LibcMinor: 36}
	tags, err := bookworm.Tags()
	if err != nil {
		t.Fatal(err)
	}
	s := NewTagSet(tags)
	platforms := bookworm.Platforms()
	// manylinux_2_36 .. manylinux_2_5 (32) + 3 legacy aliases + linux_x86_64.
	if len(platforms) != 36 || platforms[0] != "manylinux_2_36_x86_64" || platforms[len(platforms)-1] != "linux_x86_64" {
		t.Fatalf("platforms = %v", platforms)
	}
	idx := func(p string) int {
		for i, q := range platforms {
			if q == p {
				return i
			}
		}
		return -1
	}
	if idx("manylinux2014_x86_64") != idx("manylinux_2_17_x86_64")+1 || idx("manylinux1_x86_64") != idx("manylinux_2_5_x86_64")+1 {
		t.Errorf("legacy aliases misplaced: %v", platforms)
	}
	rank := func(name string) (int, bool) {
		f, err := ParseFilename(name)
		if err != nil {
			t.Fatal(err)
		}
		return s.Priority(f)
	}
	order := []string{
		"numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
		"numpy-1.26.4-cp311-cp311-linux_x86_64.whl",
		"cryptography-42.0.5-cp39-abi3-manylinux_2_28_x86_64.whl",
		"foo-1.0-py3-none-manylinux1_x86_64.whl",
		"foo-1.0-cp311-none-any.whl",
		"foo-1.0-py3-none-any.whl",
		"foo-1.0-py2.py30-none-any.whl",
	}
	prev := -1
	for _, name := range order {
		r, ok := rank(name)
		if !ok || r <= prev {
			t.Errorf("%s: priority %d (ok=%v), want > %d", name, r, ok, prev)
		}
		prev = r
	}
	for _, name := range []string{
		"numpy-1.26.4-cp312-cp312-manylinux_2_17_x86_64.whl",
		"numpy-1.26.4-cp311-cp311-manylinux_2_37_x86_64.whl",
		"numpy-1.26.4-cp311-cp311-musllinux_1_1_x86_64.whl",
		"numpy-1.26.4-cp311-cp311-manylinux_2_17_aarch64.whl",
		"numpy-1.26.4-cp311-cp311-win_amd64.whl",
		"foo-1.0-py2-none-any.whl",
	} {
		if r, ok := rank(name); ok {
			t.Errorf("%s: priority %d, want incompatible", name, r)
		}
	}

	ft := Target{PythonMajor: 3, PythonMinor: 13, FreeThreaded: true, Arch: "aarch64", Libc: Musl, LibcMajor: 1, LibcMinor: 2}
	tags, err = ft.Tags()
	if err != nil {
		t.Fatal(err)
	}
	if tags[0].String() != "cp313-cp313t-musllinux_1_2_aarch64" {
		t.Errorf("free-threaded first tag = %s", tags[0])
	}
	for _, tag := range tags {
		if tag.ABI == "abi3" {
			t.Fatalf("free-threaded target accepts %s", tag)
		}
	}

	for _, bad := range []Target{
		{PythonMajor: 2, PythonMinor: 7, Arch: "x86_64", Libc: Glibc},
		{PythonMajor: 3, PythonMinor: 11, Arch: "", Libc: Glibc},
		{PythonMajor: 3, PythonMinor: 11, Arch: "x86_64", Libc: "bionic"},
		{Implementation: "pp", PythonMajor: 3, PythonMinor: 10, Arch: "x86_64", Libc: Glibc},
		{PythonMajor: 3, PythonMinor: 12, FreeThreaded: true, Arch: "x86_64", Libc: Glibc},
	} {
		if _, err := bad.Tags(); err == nil {
			t.Errorf("%+v.Tags() succeeded, want error", bad)
		}
	}
}

func FuzzParseWheelFilename(f *testing.F) {
	for _, s := range []string{"numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
		"foo-1.0-1-py2.py3-none-any.whl", "a-b-c-d-e.whl", "-----.whl", "foo-1.0-py3-none-any.zip"} {
		f.Add(s)
	}
	set, err := NewTargetTagSet(Target{PythonMajor: 3, PythonMinor: 11, Arch: "x86_64", Libc: Glibc, LibcMajor: 2, LibcMinor: 36})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		w, err := ParseFilename(s)
		if err != nil {
			return
		}
		if len(w.Tags) == 0 || w.Name == "" && !strings.HasPrefix(s, "-") {
			t.Fatalf("ParseFilename(%q) = %+v", s, w)
		}
		for _, tag := range w.Tags {
			if strings.ToLower(tag.String()) != tag.String() {
				t.Fatalf("tag %s not lower case", tag)
			}
		}
		if p, ok := set.Priority(w); ok && (p < 0 || p >= len(set.Tags())) {
			t.Fatalf("priority %d out of range", p)
		}
	})
}
