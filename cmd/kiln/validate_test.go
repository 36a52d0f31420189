package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHostileSpecsFailOffline (issue 9): what an adversarial probe found
// passing `kiln name` (or failing only at publish, or blamed on the wrong
// key) is a spec error: exit 2 from kiln name and kiln build alike, before
// any network access, naming file:line: key.
func TestHostileSpecsFailOffline(t *testing.T) {
	digest := "sha256:" + strings.Repeat("a", 64)
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"E1 tag_format too long", "base_image: scratch\ntag_format: '" + strings.Repeat("t", 100) + "-{spec_hash}'\n", []string{"kiln.yaml:2: tag_format", "133 characters", "at most 128"}},
		{"E2 image with a digest", "base_image: scratch\nimage: localhost:5000/x@" + digest + "\n", []string{"kiln.yaml:2: image", "names a digest", "give a tag"}},
		{"E3 port out of range", "base_image: scratch\nregistry: localhost:99999\n", []string{"kiln.yaml:2: registry", "1 to 65535"}},
		{"E3 empty path component", "base_image: scratch\nregistry: localhost:5000//x\n", []string{"kiln.yaml:2: registry", "empty path component"}},
		{"E3 upper-case host", "base_image: scratch\nregistry: LOCALHOST:5000\n", []string{"kiln.yaml:2: registry", "upper-case", "localhost:5000"}},
		{"E9 apt entry", "base_image: scratch\napt_packages: ['jq; rm -rf /']\n", []string{"kiln.yaml:2: apt_packages[0]", `"jq; rm -rf /"`, "invalid package name"}},
		{"E11 requirement", "base_image: scratch\npackages: ['bad name!!']\n", []string{"kiln.yaml:2: packages[0]", `"bad name!!"`}},
		{"E11 python_version", "base_image: scratch\npython_version: banana\n", []string{"kiln.yaml:2: python_version", `"banana"`}},
		{"D8 NUL in env", "base_image: scratch\nenv: {A: \"x\\0y\"}\n", []string{"kiln.yaml:2: env.A", "NUL"}},
		{"D8 NUL in a label", "base_image: scratch\nlabels: {\"a\\0\": x}\n", []string{"kiln.yaml:2: labels", "NUL"}},
		{"D8 = in an env name", "base_image: scratch\nenv: {A=B: x}\n", []string{"kiln.yaml:2: env", `"A=B"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "kiln.yaml")
			if err := os.WriteFile(file, []byte(tc.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, cmd := range []string{"name", "build"} {
				var stdout, stderr strings.Builder
				code := run([]string{cmd, "-f", file, "--cache-dir", t.TempDir()}, &stdout, &stderr)
				if code != exitUsage {
					t.Errorf("kiln %s: exit %d, want %d\n%s", cmd, code, exitUsage, stderr.String())
				}
				for _, w := range tc.want {
					if !strings.Contains(stderr.String(), w) {
						t.Errorf("kiln %s: stderr %q does not contain %q", cmd, stderr.String(), w)
					}
				}
			}
		})
	}
}

// TestYAMLAliasesAccepted (E4): aliases and merge keys are YAML, and give
// the image the written-out spec gives.
func TestYAMLAliasesAccepted(t *testing.T) {
	dir := t.TempDir()
	aliased := filepath.Join(dir, "aliased.yaml")
	plain := filepath.Join(dir, "plain.yaml")
	if err := os.WriteFile(aliased, []byte("base_image: scratch\nname: x\nlabels: &l {A: '1', B: '2'}\nenv:\n  <<: *l\n  B: own\napt_sources: []\ncmd: [&c run, *c]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(plain, []byte("base_image: scratch\nname: x\nlabels: {A: '1', B: '2'}\nenv: {A: '1', B: own}\ncmd: [run, run]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	names := map[string]string{}
	for _, f := range []string{aliased, plain} {
		var stdout, stderr strings.Builder
		if code := run([]string{"name", "-f", f}, &stdout, &stderr); code != exitOK {
			t.Fatalf("kiln name -f %s: exit %d\n%s", filepath.Base(f), code, stderr.String())
		}
		names[f] = stdout.String()
	}
	if names[aliased] != names[plain] {
		t.Errorf("the aliased spec names %q, the written-out one %q", names[aliased], names[plain])
	}
}

// TestEmptyListNamesLikeAbsent: `packages: []` and no packages key are the
// same image, so the same tag; `cmd: []` clears the parent's cmd, so not.
func TestEmptyListNamesLikeAbsent(t *testing.T) {
	dir := t.TempDir()
	name := func(yaml string) string {
		t.Helper()
		file := filepath.Join(dir, "kiln.yaml")
		if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		var stdout, stderr strings.Builder
		if code := run([]string{"name", "-f", file}, &stdout, &stderr); code != exitOK {
			t.Fatalf("kiln name: exit %d\n%s", code, stderr.String())
		}
		return stdout.String()
	}
	absent := name("base_image: scratch\nname: x\n")
	if got := name("base_image: scratch\nname: x\npackages: []\napt_packages: []\nenv: {}\nlabels: {}\npip_extra_index_url: []\napt_sources: []\n"); got != absent {
		t.Errorf("empty lists name %q, absent ones %q", got, absent)
	}
	if got := name("base_image: scratch\nname: x\ncmd: []\n"); got == absent {
		t.Errorf("cmd: [] (clear the parent's) names %q, like an absent cmd", got)
	}
}

// TestDurationFlagsMustBePositive (E13): a zero or negative timeout is a
// usage error naming the flag, not silently ignored.
func TestDurationFlagsMustBePositive(t *testing.T) {
	for _, cmd := range []string{"name", "build", "lock", "exists"} {
		for _, args := range [][]string{
			{"--registry-timeout", "0"},
			{"--registry-timeout", "-1s"},
			{"--registry-stall-timeout", "0s"},
			{"--registry-stall-timeout", "-5m"},
		} {
			var stdout, stderr strings.Builder
			full := append([]string{cmd, "--base-image", "scratch", "--cache-dir", t.TempDir()}, args...)
			if code := run(full, &stdout, &stderr); code != exitUsage {
				t.Errorf("kiln %v: exit %d, want %d\n%s", full, code, exitUsage, stderr.String())
			}
			if !strings.Contains(stderr.String(), args[0]+" ") || !strings.Contains(stderr.String(), "positive duration") {
				t.Errorf("kiln %v: stderr %q does not name %s and the fix", full, stderr.String(), args[0])
			}
		}
	}
}

// TestSpecFileBounded (H4): kiln name -f /dev/zero (or a symlink to it)
// fails at once naming the file, instead of running out of memory.
func TestSpecFileBounded(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "kiln.yaml")
	if err := os.Symlink("/dev/zero", link); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, []byte("base_image: scratch\n#"+strings.Repeat("x", 2<<20)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ file, want string }{
		{"/dev/zero", "/dev/zero: is a character device"},
		{link, link + ": is a character device (through the symlink to /dev/zero)"},
		{big, big + ": larger than 1024 KiB"},
		{dir, dir + ": is a directory"},
	} {
		var stdout, stderr strings.Builder
		if code := run([]string{"name", "-f", tc.file}, &stdout, &stderr); code != exitUsage {
			t.Errorf("kiln name -f %s: exit %d, want %d\n%s", tc.file, code, exitUsage, stderr.String())
		}
		if !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("kiln name -f %s: stderr %q does not contain %q", tc.file, stderr.String(), tc.want)
		}
	}
}

// TestMalformedLockHash (E10): a kiln.lock sha256 that is not one is
// reported when the lock is read, naming the lock, the package and the fix.
func TestMalformedLockHash(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "kiln.yaml"), []byte("base_image: scratch\napt_packages: [git]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	lock := `{"version":1,"platform":"linux/amd64","parent":{"ref":"scratch","digest":"sha256:` + strings.Repeat("a", 64) + `"},` +
		`"apt_packages":["git"],"debs":[{"name":"git","version":"1:2.39","architecture":"amd64","sha256":"` + strings.Repeat("g", 64) + `","size":3,"url":"http://127.0.0.1:9/git.deb"}]}`
	if err := os.WriteFile(filepath.Join(dir, "kiln.lock"), []byte(lock), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	for _, cmd := range []string{"name", "build"} {
		var stdout, stderr strings.Builder
		if code := run([]string{cmd, "--locked", "--cache-dir", t.TempDir()}, &stdout, &stderr); code != exitUsage {
			t.Errorf("kiln %s --locked: exit %d, want %d\n%s", cmd, code, exitUsage, stderr.String())
		}
		for _, w := range []string{"kiln.lock: git: sha256", "is not a valid sha256", "regenerate the lock with kiln lock"} {
			if !strings.Contains(stderr.String(), w) {
				t.Errorf("kiln %s --locked: stderr %q does not contain %q", cmd, stderr.String(), w)
			}
		}
	}
}

// TestInterruptibleReturnsOnCancel (H3): the plan phase (requirements and
// .dockerignore files, which may be FIFOs, or huge trees) returns as soon
// as the signal context is cancelled, even while its work is blocked.
func TestInterruptibleReturnsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	blocked := make(chan struct{})
	defer close(blocked)
	cancel()
	_, err := interruptible(ctx, func() (int, error) {
		<-blocked
		return 1, nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("interruptible with a cancelled context and blocked work = %v, want context.Canceled", err)
	}
	v, err := interruptible(context.Background(), func() (int, error) { return 7, nil })
	if v != 7 || err != nil {
		t.Errorf("interruptible(work that returns 7) = %d, %v", v, err)
	}
}
