package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunAsNobody(t *testing.T) {
	t.Parallel()
	RequireRoot(t)
	res := RunAsNobody(t, RunOptions{}, "id", "-u")
	if res.Code != 0 || strings.TrimSpace(res.Stdout) != "65534" {
		t.Fatalf("id -u as nobody: %s", res)
	}
	res = RunAsNobody(t, RunOptions{}, "id", "-G")
	if res.Code != 0 || strings.TrimSpace(res.Stdout) != "65534" {
		t.Fatalf("groups as nobody: %s", res)
	}
	// The test's own temp dirs are not reachable; UserDir is writable.
	dir := UserDir(t)
	res = RunAsNobody(t, RunOptions{Dir: dir}, "sh", "-c", "touch created && ls -n created && ! ls "+t.TempDir())
	if res.Code != 0 || !strings.Contains(res.Stdout, " 65534 65534 ") {
		t.Fatalf("writing to UserDir: %s", res)
	}
}

func TestGoBinaryRunAsNobody(t *testing.T) {
	t.Parallel()
	RequireRoot(t)
	bin := GoBinary(t, "./internal/testenv/testdata/hello")
	if again := GoBinary(t, "./internal/testenv/testdata/hello"); again != bin {
		t.Errorf("second build went to %s, first to %s", again, bin)
	}
	home := UserDir(t)
	work := UserDir(t)
	fixture := filepath.Join(PublicDir(t), "fixture")
	if err := os.MkdirAll(filepath.Join(fixture, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	ChownTree(t, fixture, NobodyUID, NobodyGID)
	res := RunAsNobody(t, RunOptions{
		Dir:   work,
		Home:  home,
		Env:   []string{"SOURCE_DATE_EPOCH=1700000000", "TZ=Asia/Tokyo"},
		Umask: "077",
	}, bin, "build", "--flag", "a b", filepath.Join(fixture, "sub"))
	if res.Code != 0 {
		t.Fatal(res)
	}
	for _, want := range []string{
		"uid=65534 gid=65534 groups=0 mode=0600",
		"wd=" + work,
		"HOME=" + home,
		"XDG_CACHE_HOME=" + home + "/.cache",
		"SOURCE_DATE_EPOCH=1700000000",
		`args=["build" "--flag" "a b" "` + filepath.Join(fixture, "sub") + `"]`,
	} {
		if !strings.Contains(res.Stdout, want+"\n") {
			t.Errorf("output lacks %q:\n%s", want, res.Stdout)
		}
	}
	res = RunAsNobody(t, RunOptions{}, bin, "fail")
	if res.Code != 3 || !strings.Contains(res.Stderr, "failing as asked") {
		t.Errorf("failing run: %s", res)
	}
}

func TestKilnBinary(t *testing.T) {
	t.Parallel()
	matches, _ := filepath.Glob(filepath.Join(RepoRoot(t), "cmd", "kiln", "*.go"))
	if len(matches) == 0 {
		t.Skip("cmd/kiln has no Go files yet")
	}
	res := RunKiln(t, RunOptions{}, "--help")
	t.Logf("kiln --help: %s", res)
}
