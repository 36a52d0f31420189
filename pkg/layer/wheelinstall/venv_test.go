package wheelinstall_test

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/pkg/layer/wheelinstall"
)

func TestWriteVenv(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	err := wheelinstall.WriteVenv(tw, wheelinstall.VenvOptions{
		Prefix: "opt/venv", PythonVersion: "3.11", PythonFullVersion: "3.11.2",
		Interpreter: "/usr/bin/python3.11", Epoch: testEpoch, Dirs: dirs,
	})
	if err != nil {
		t.Fatal(err)
	}
	tw.Close()
	var got []string
	var cfg string
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !h.ModTime.Equal(testEpoch) {
			t.Errorf("%s: mtime %v", h.Name, h.ModTime)
		}
		s := fmt.Sprintf("%c %o %s", h.Typeflag, h.Mode, h.Name)
		if h.Linkname != "" {
			s += " -> " + h.Linkname
		}
		got = append(got, s)
		if h.Name == "opt/venv/pyvenv.cfg" {
			b, _ := io.ReadAll(tr)
			cfg = string(b)
		}
	}
	want := []string{
		"5 755 opt/",
		"5 755 opt/venv/",
		"5 755 opt/venv/bin/",
		"2 777 opt/venv/bin/python -> python3.11",
		"2 777 opt/venv/bin/python3 -> python3.11",
		"2 777 opt/venv/bin/python3.11 -> /usr/bin/python3.11",
		"5 755 opt/venv/include/",
		"5 755 opt/venv/include/python3.11/",
		"5 755 opt/venv/lib/",
		"5 755 opt/venv/lib/python3.11/",
		"5 755 opt/venv/lib/python3.11/site-packages/",
		"2 777 opt/venv/lib64 -> lib",
		"0 644 opt/venv/pyvenv.cfg",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("entries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	wantCfg := "home = /usr/bin\ninclude-system-site-packages = true\nversion = 3.11.2\n" +
		"executable = /usr/bin/python3.11\ncommand = /usr/bin/python3.11 -m venv /opt/venv\n"
	if cfg != wantCfg {
		t.Errorf("pyvenv.cfg = %q, want %q", cfg, wantCfg)
	}
	if !dirs["opt/venv/lib/python3.11/site-packages"] {
		t.Error("site-packages not recorded in Dirs")
	}
}

func TestWriteVenvRefuses(t *testing.T) {
	for _, o := range []wheelinstall.VenvOptions{
		{Prefix: "", PythonVersion: "3.11", Interpreter: "/usr/bin/python3"},
		{Prefix: "opt/../venv", PythonVersion: "3.11", Interpreter: "/usr/bin/python3"},
		{Prefix: "opt/venv", PythonVersion: "3", Interpreter: "/usr/bin/python3"},
		{Prefix: "opt/venv", PythonVersion: "3.11", Interpreter: "python3"},
	} {
		if err := wheelinstall.WriteVenv(tar.NewWriter(io.Discard), o); err == nil {
			t.Errorf("WriteVenv(%+v) succeeded", o)
		}
	}
}
