package main

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/internal/testenv"
)

// TestE2EProgressOnTerminal drives kiln build, as nobody, on a
// pseudo-terminal (script(1)) while it writes a 256 MiB code layer of
// incompressible bytes, and checks that the display changed in place as
// the layer grew, then ended with the usual summary; the same build with
// stderr on a pipe prints plain lines only.
func TestE2EProgressOnTerminal(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	testenv.Require(t, "docker-registry", "setpriv", "script")
	testenv.RequireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	dir := writeSpec(t, "name: progress\nregistry: "+reg.Host+"\nbase_image: scratch\ncopy: {big.bin: /data/big.bin}\n", nil)
	f, err := os.Create(filepath.Join(dir, "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewChaCha8([32]byte{1}))
	buf := make([]byte, 1<<20)
	for range 256 {
		for i := 0; i < len(buf); i += 8 {
			v := rng.Uint64()
			for j := range 8 {
				buf[i+j] = byte(v >> (8 * j))
			}
		}
		if _, err := f.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	testenv.ChownTree(t, dir, 65534, 65534)

	home := testenv.UserDir(t)
	cmd := testenv.KilnBinary(t) + " build"
	res := testenv.RunAsNobody(t, testenv.RunOptions{Dir: dir, Home: home}, "script", "-qfec", cmd, "/dev/null")
	if res.Code != 0 {
		t.Fatalf("kiln build on a terminal: %s", res)
	}
	out := res.Stdout
	if !strings.Contains(out, "[+] kiln build") {
		t.Fatalf("kiln build on a terminal drew no live display:\n%q", out)
	}
	if !strings.Contains(out, "\033[J") || !regexp.MustCompile(`\x1b\[[0-9]+A`).MatchString(out) {
		t.Errorf("the display is not redrawn in place (no cursor-up and clear sequences):\n%q", out)
	}
	written := map[string]bool{}
	for _, m := range regexp.MustCompile(`layer code \(source_root and copy\): ([0-9.]+ [KMG]?i?B) written`).FindAllStringSubmatch(out, -1) {
		written[m[1]] = true
	}
	if len(written) < 2 {
		t.Errorf("during the 256 MiB layer the display showed %d distinct byte counts written (%v); want it to change at least once:\n%q", len(written), written, out)
	}
	// The display ends with the plain summary and the reference.
	summary := out[strings.LastIndex(out, "\033[J"):]
	for _, w := range []string{"layer code (source_root and copy): sha256:", "(built)", "layers: 1 built", "uploaded ", reg.Host + "/progress:"} {
		if !strings.Contains(summary, w) {
			t.Errorf("after the live display, the output does not contain %q:\n%q", w, summary)
		}
	}

	// Not a terminal: plain lines, no escape sequences.
	plain := testenv.RunKiln(t, testenv.RunOptions{Dir: dir, Home: home}, "build", "--force")
	if plain.Code != 0 {
		t.Fatalf("kiln build --force on a pipe: %s", plain)
	}
	if strings.Contains(plain.Stderr, "\033[") || strings.Contains(plain.Stderr, "[+] kiln build") {
		t.Errorf("kiln build with stderr on a pipe drew a live display:\n%q", plain.Stderr)
	}
	if !strings.Contains(plain.Stderr, "layers: 0 built, 1 reused") {
		t.Errorf("kiln build --force on a pipe did not print its plain summary:\n%s", plain.Stderr)
	}
	// --progress=tty forces the display even on a pipe; -q silences it.
	tty := testenv.RunKiln(t, testenv.RunOptions{Dir: dir, Home: home}, "build", "--force", "--progress=tty")
	if tty.Code != 0 || !strings.Contains(tty.Stderr, "[+] kiln build") {
		t.Errorf("kiln build --progress=tty on a pipe drew no display: %s", tty)
	}
	quiet := testenv.RunKiln(t, testenv.RunOptions{Dir: dir, Home: home}, "build", "--force", "-q")
	if quiet.Code != 0 || quiet.Stderr != "" {
		t.Errorf("kiln build -q printed on stderr: %s", quiet)
	}
}
