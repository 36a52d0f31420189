package build

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/kiln-build/kiln/pkg/cache"
	"github.com/kiln-build/kiln/pkg/push"
	"github.com/kiln-build/kiln/pkg/resolve"
	"github.com/kiln-build/kiln/pkg/sandbox"
)

// commandsKey returns the commands step's key for yaml (after a code step
// with key codeKey, when not ""), or "" when the step does not run at
// that place (afterCode).
func commandsKey(t *testing.T, yaml string, afterCode bool, codeKey string) (string, map[string]string) {
	t.Helper()
	dir := appDir(t)
	s := loadSpec(t, dir, "name: app\nbase_image: example.invalid/base:1\nsource_root: app\n"+yaml)
	p, err := NewPlan(context.Background(), s, PlanOptions{Epoch: time.Unix(0, 0)})
	must(t, err)
	img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{Config: v1.Config{Env: []string{"PATH=/usr/bin:/bin"}}})
	must(t, err)
	ref, err := name.ParseReference("example.invalid/base:1")
	must(t, err)
	b := &session{p: p, parent: &resolve.Parent{Ref: ref, Digest: ref.Context().Digest("sha256:" + strings.Repeat("a", 64)), Image: img}}
	if codeKey != "" {
		b.steps = append(b.steps, &step{name: StepCode, key: codeKey})
	}
	in, run, err := commandsStep{afterCode: afterCode}.inputs(context.Background(), b)
	must(t, err)
	if !run {
		return "", nil
	}
	return newStep(StepCommands, in).key, in
}

// TestCommandsStepKey: the commands step runs before the code unless
// commands_after_code; its key holds the commands, their environment, the
// network flag and every earlier step's key, so that a code change reruns
// commands only when they run after the code.
func TestCommandsStepKey(t *testing.T) {
	base, in := commandsKey(t, "commands: [make]\n", false, "")
	if base == "" {
		t.Fatal("the commands step does not run before the code")
	}
	for _, k := range []string{"parent", "commands", "env", "network", "sandbox", "platform", "workdir", "epoch"} {
		if _, ok := in[k]; !ok {
			t.Errorf("the commands step's inputs lack %s: %v", k, in)
		}
	}
	if in["sandbox"] != sandbox.FormatVersion {
		t.Errorf("sandbox input = %q, want %q", in["sandbox"], sandbox.FormatVersion)
	}
	if k, _ := commandsKey(t, "commands: [make]\n", true, ""); k != "" {
		t.Error("the commands step also runs after the code without commands_after_code")
	}
	if k, _ := commandsKey(t, "commands: [make]\ncommands_after_code: true\n", false, ""); k != "" {
		t.Error("with commands_after_code the commands step still runs before the code")
	}
	after1, _ := commandsKey(t, "commands: [make]\ncommands_after_code: true\n", true, "code-v1")
	after2, _ := commandsKey(t, "commands: [make]\ncommands_after_code: true\n", true, "code-v2")
	if after1 == "" || after1 == after2 {
		t.Errorf("after the code, a code change keeps the commands key (%s, %s)", after1, after2)
	}
	for _, tc := range []struct{ name, yaml string }{
		{"other commands", "commands: [make all]\n"},
		{"one more command", "commands: [make, make install]\n"},
		{"network", "commands: [make]\ncommands_network: true\n"},
		{"env", "commands: [make]\nenv: {CFLAGS: -O2}\n"},
		{"workdir", "commands: [make]\nworkdir: /src\n"},
	} {
		if k, _ := commandsKey(t, tc.yaml, false, ""); k == base {
			t.Errorf("%s: the commands key did not change", tc.name)
		}
	}
	if k, _ := commandsKey(t, "commands: [make]\ncommands_timeout: 2h\n", false, ""); k != base {
		t.Error("commands_timeout changed the key: a time limit does not change what the commands make")
	}
}

// TestCommandsEnv: the commands see the image's environment as the steps
// before them leave it (the venv first on PATH), HOME=/root and
// SOURCE_DATE_EPOCH; the spec's env wins.
func TestCommandsEnv(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		deltas     bool
		want       []string
	}{
		{"parent env", "", false, []string{"PATH=/usr/bin:/bin", "HOME=/root", "SOURCE_DATE_EPOCH=0", "PYTHONPATH=/root"}},
		{"after the venv", "", true, []string{"PATH=/opt/venv/bin:/usr/bin:/bin", "VIRTUAL_ENV=/opt/venv", "HOME=/root"}},
		{"spec HOME", "env: {HOME: /home/me}\n", false, []string{"HOME=/home/me", "SOURCE_DATE_EPOCH=0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := appDir(t)
			s := loadSpec(t, dir, "name: app\nbase_image: example.invalid/base:1\ncommands: [make]\n"+tc.yaml)
			p, err := NewPlan(context.Background(), s, PlanOptions{Epoch: time.Unix(0, 0)})
			must(t, err)
			img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{Config: v1.Config{Env: []string{"PATH=/usr/bin:/bin"}}})
			must(t, err)
			ref, err := name.ParseReference("example.invalid/base:1")
			must(t, err)
			b := &session{p: p, parent: &resolve.Parent{Ref: ref, Image: img}}
			if tc.deltas {
				b.steps = append(b.steps, &step{name: StepPython, config: pythonStep{}.config(), layers: []builtLayer{{}}})
			}
			env := strings.Join(b.commandsEnv(), "\n") + "\n"
			for _, w := range tc.want {
				if !strings.Contains(env, w+"\n") {
					t.Errorf("env lacks %s:\n%s", w, env)
				}
			}
			if strings.Count(env, "HOME=") != 1 {
				t.Errorf("HOME set more than once:\n%s", env)
			}
		})
	}
}

// TestCommandsForeignPlatform: commands for a platform this machine cannot
// run fail before any parent layer is fetched, naming the platform and the
// fix.
func TestCommandsForeignPlatform(t *testing.T) {
	plat := v1.Platform{OS: "linux", Architecture: "riscv64"}
	if ex := sandbox.HowToRun(plat, ""); ex.OK() {
		t.Skipf("this machine runs riscv64 programs (%s)", ex)
	}
	reg := newRegistry(t)
	pushParent(t, reg.host+"/base:riscv", "riscv64")
	dir := appDir(t)
	s := loadSpec(t, dir, "name: app\nregistry: "+reg.host+"\nbase_image: "+reg.host+"/base:riscv\nplatform: linux/riscv64\ncommands: [make]\n")
	p, err := NewPlan(context.Background(), s, PlanOptions{Epoch: time.Unix(0, 0)})
	must(t, err)
	c, err := cache.Open(t.TempDir())
	must(t, err)
	reg.reset()
	_, err = Run(context.Background(), p, Options{Cache: c, Publisher: push.NewRegistry()})
	if err == nil || !strings.Contains(err.Error(), "commands: cannot run programs for linux/riscv64") || !strings.Contains(err.Error(), "binfmt") {
		t.Errorf("commands for linux/riscv64: %v, want a refusal naming the platform and binfmt", err)
	}
	if gets := reg.blobGETs(); len(gets) > 1 { // the config only
		t.Errorf("the refused build fetched parent blobs: %v", gets)
	}
}
