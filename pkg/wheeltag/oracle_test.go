package wheeltag

import (
	"fmt"
	"math/rand"
	"sort"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/internal/pyoracle"
)

// runOracle sends req to testdata/oracle.py and decodes its answer into
// resp (see pyoracle.Run).
func runOracle(t *testing.T, req, resp any) {
	t.Helper()
	pyoracle.Run(t, "testdata/oracle.py", "from pip._vendor.packaging import tags", req, resp)
}

type targetReq struct {
	Impl      string   `json:"impl"`
	Major     int      `json:"major"`
	Minor     int      `json:"minor"`
	Debug     bool     `json:"debug"`
	ABIs      []string `json:"abis"`
	Arch      string   `json:"arch"`
	Libc      string   `json:"libc"`
	LibcMajor int      `json:"libc_major"`
	LibcMinor int      `json:"libc_minor"`
}

func oracleTargets() []Target {
	targets := []Target{
		{PythonMajor: 3, PythonMinor: 11, Arch: "x86_64", Libc: Glibc, LibcMajor: 2, LibcMinor: 36},
		{PythonMajor: 3, PythonMinor: 12, Arch: "aarch64", Libc: Glibc, LibcMajor: 2, LibcMinor: 35},
		{PythonMajor: 3, PythonMinor: 10, Arch: "x86_64", Libc: Glibc, LibcMajor: 2, LibcMinor: 17},
		{PythonMajor: 3, PythonMinor: 9, Arch: "i686", Libc: Glibc, LibcMajor: 2, LibcMinor: 12},
		{PythonMajor: 3, PythonMinor: 8, Arch: "armv7l", Libc: Glibc, LibcMajor: 2, LibcMinor: 31},
		{PythonMajor: 3, PythonMinor: 11, Arch: "ppc64le", Libc: Glibc, LibcMajor: 2, LibcMinor: 16},
		{PythonMajor: 3, PythonMinor: 13, Arch: "s390x", Libc: Glibc, LibcMajor: 3, LibcMinor: 2},
		{PythonMajor: 3, PythonMinor: 11, Arch: "riscv64", Libc: Glibc, LibcMajor: 2, LibcMinor: 36},
		{PythonMajor: 3, PythonMinor: 11, Arch: "x86_64", Libc: Musl, LibcMajor: 1, LibcMinor: 2},
		{PythonMajor: 3, PythonMinor: 12, Arch: "aarch64", Libc: Musl, LibcMajor: 1, LibcMinor: 1},
		{PythonMajor: 3, PythonMinor: 11, Debug: true, Arch: "x86_64", Libc: Glibc, LibcMajor: 2, LibcMinor: 28},
		{PythonMajor: 3, PythonMinor: 7, Arch: "x86_64", Libc: Glibc, LibcMajor: 2, LibcMinor: 24},
		{PythonMajor: 3, PythonMinor: 7, Debug: true, Arch: "x86_64", Libc: Glibc, LibcMajor: 2, LibcMinor: 24},
		{PythonMajor: 3, PythonMinor: 4, Arch: "x86_64", Libc: Glibc, LibcMajor: 2, LibcMinor: 5},
		{Implementation: "pp", PythonMajor: 3, PythonMinor: 10, ABIs: []string{"pypy310_pp73"}, Arch: "x86_64", Libc: Glibc, LibcMajor: 2, LibcMinor: 36},
	}
	return targets
}

func toReq(t Target) targetReq {
	return targetReq{Impl: t.impl(), Major: t.PythonMajor, Minor: t.PythonMinor, Debug: t.Debug, ABIs: t.ABIs,
		Arch: t.Arch, Libc: string(t.Libc), LibcMajor: t.LibcMajor, LibcMinor: t.LibcMinor}
}

func (g gen) filename() string {
	name := g.pick("numpy", "Foo.Bar", "foo_bar", "torch", "a", "scikit_learn", "zope.interface", "foo__bar", "foo-bar", "Été", "x y", "")
	version := g.pick("1.0", "1.26.4", "2.1.0+cu118", "0.1.dev1", "1!2.0rc1", "v1.0", "1.0.0.post1", "not.a.version", "1.0-1")
	parts := []string{name, version}
	if g.r.Intn(4) == 0 {
		parts = append(parts, g.pick("1", "2abc", "10_x", "abc", "007", ""))
	}
	py := g.pick("py3", "py2.py3", "cp311", "cp39", "CP311", "pp310", "cp312.cp311", "py311")
	abi := g.pick("none", "abi3", "cp311", "cp311d", "cp37m", "pypy310_pp73", "cp311.abi3")
	plat := g.pick("any", "manylinux_2_17_x86_64.manylinux2014_x86_64", "manylinux1_x86_64", "musllinux_1_1_aarch64",
		"linux_x86_64", "win_amd64", "macosx_11_0_arm64", "manylinux_2_28_aarch64", "manylinux_2_36_x86_64", "manylinux2010_i686")
	parts = append(parts, py, abi, plat)
	s := strings.Join(parts, "-")
	switch g.r.Intn(12) {
	case 0:
		s += ".zip"
	case 1:
		s = strings.Replace(s, "-", "--", 1)
	default:
		s += ".whl"
	}
	return s
}

type gen struct{ r *rand.Rand }

func (g gen) pick(xs ...string) string { return xs[g.r.Intn(len(xs))] }

func TestOracleTagsAndFilenames(t *testing.T) {
	targets := oracleTargets()
	var treqs []targetReq
	for _, tg := range targets {
		treqs = append(treqs, toReq(tg))
	}
	g := gen{rand.New(rand.NewSource(427))}
	var wheels []string
	for i := 0; i < 3000; i++ {
		wheels = append(wheels, g.filename())
	}
	var resp struct {
		PackagingVersion string     `json:"packaging_version"`
		Targets          [][]string `json:"targets"`
		Wheels           []struct {
			OK      bool     `json:"ok"`
			Name    string   `json:"name"`
			Version string   `json:"version"`
			Build   []any    `json:"build"`
			Tags    []string `json:"tags"`
		} `json:"wheels"`
	}
	runOracle(t, map[string]any{"targets": treqs, "wheels": wheels}, &resp)
	t.Logf("reference: packaging %s", resp.PackagingVersion)
	bad := 0
	report := func(format string, args ...any) {
		bad++
		if bad <= 20 {
			t.Errorf(format, args...)
		}
	}
	var sets []*TagSet
	for i, tg := range targets {
		tags, err := tg.Tags()
		if err != nil {
			t.Fatalf("%v.Tags(): %v", tg, err)
		}
		sets = append(sets, NewTagSet(tags))
		want := resp.Targets[i]
		got := make([]string, len(tags))
		for j, tag := range tags {
			got[j] = tag.String()
		}
		if len(got) != len(want) {
			report("%v: %d tags, packaging %d", tg, len(got), len(want))
		}
		for j := 0; j < len(got) && j < len(want); j++ {
			if got[j] != want[j] {
				report("%v: tag %d = %s, packaging %s", tg, j, got[j], want[j])
				break
			}
		}
	}
	valid, ranked := 0, 0
	for i, w := range wheels {
		want := resp.Wheels[i]
		f, err := ParseFilename(w)
		if (err == nil) != want.OK {
			report("ParseFilename(%q): err=%v, packaging ok=%v", w, err, want.OK)
			continue
		}
		if err != nil {
			continue
		}
		valid++
		var tags []string
		for _, tag := range f.Tags {
			tags = append(tags, tag.String())
		}
		sort.Strings(tags)
		build := []any{}
		if f.Build.Set {
			build = []any{float64(f.Build.Number), f.Build.Suffix}
		}
		wantBuild := fmt.Sprint(want.Build)
		if f.Name != want.Name || f.Version.String() != want.Version || fmt.Sprint(tags) != fmt.Sprint(want.Tags) || fmt.Sprint(build) != wantBuild {
			report("ParseFilename(%q) = %q %q %v %v; packaging %q %q %v %v", w, f.Name, f.Version, build, tags, want.Name, want.Version, wantBuild, want.Tags)
		}
		for j, set := range sets {
			best, ok := -1, false
			for k, s := range resp.Targets[j] {
				for _, tag := range tags {
					if s == tag && (!ok || k < best) {
						best, ok = k, true
					}
				}
			}
			gb, gok := set.Priority(f)
			if gok != ok || (ok && gb != best) {
				report("Priority(%q) for %v = %d,%v; want %d,%v", w, targets[j], gb, gok, best, ok)
			}
			if ok {
				ranked++
			}
		}
	}
	t.Logf("%d valid filenames, %d (filename, target) pairs compatible", valid, ranked)
	if valid < len(wheels)/3 || ranked == 0 {
		t.Errorf("generator is broken: %d valid, %d ranked", valid, ranked)
	}
	if bad > 0 {
		t.Errorf("%d disagreements with packaging", bad)
	}
}
