package spec

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// TestCommandsKeys parses and validates commands and the keys that
// configure them: bad values fail naming the key (and, for an entry, its
// line); commands over scratch, which has no shell, are refused.
func TestCommandsKeys(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name    string
		yaml    string
		want    []string      // substrings of the error; nil: valid
		timeout time.Duration // CommandsTimeLimit when valid
		network bool
		after   bool
	}{
		{name: "settings without commands", yaml: "commands_network: true\ncommands_after_code: true\ncommands_timeout: 2h\n", timeout: 2 * time.Hour, network: true, after: true},
		{name: "default timeout", yaml: "commands_network: false\n", timeout: 30 * time.Minute},
		{name: "compound timeout", yaml: "commands_timeout: 1h30m\n", timeout: 90 * time.Minute},
		{name: "commands over scratch", yaml: "commands: [\"echo hi\"]\n", want: []string{"kiln.yaml:2", "commands", "/bin/sh", "scratch", "debian:bookworm-slim"}},
		{name: "NUL in a command", yaml: "commands:\n  - echo ok\n  - \"echo \\0 bad\"\n", want: []string{"kiln.yaml:4", "commands[1]", "NUL byte"}},
		{name: "empty command", yaml: "commands:\n  - echo ok\n  - '  '\n", want: []string{"kiln.yaml:4", "commands[1]", "empty command"}},
		{name: "timeout without unit", yaml: "commands_timeout: 30\n", want: []string{"kiln.yaml:2", "commands_timeout", `"30" is not a duration`, "30m"}},
		{name: "malformed timeout", yaml: "commands_timeout: soon\n", want: []string{"kiln.yaml:2", "commands_timeout", "not a duration"}},
		{name: "zero timeout", yaml: "commands_timeout: 0s\n", want: []string{"kiln.yaml:2", "commands_timeout", "not a positive duration"}},
		{name: "negative timeout", yaml: "commands_timeout: -5m\n", want: []string{"kiln.yaml:2", "commands_timeout", "not a positive duration"}},
		{name: "network not a bool", yaml: "commands_network: yes please\n", want: []string{"kiln.yaml:2", "commands_network", "true or false"}},
		{name: "timeout checked before the parent", yaml: "commands: [make]\ncommands_timeout: 0\n", want: []string{"commands_timeout", "not a positive duration"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse("kiln.yaml", dir, []byte("base_image: scratch\n"+tc.yaml))
			if err == nil {
				err = s.Validate()
			}
			if tc.want == nil {
				if err != nil {
					t.Fatalf("got %v, want a valid spec", err)
				}
				if d, err := s.CommandsTimeLimit(); err != nil || d != tc.timeout {
					t.Errorf("CommandsTimeLimit = %v, %v; want %v", d, err, tc.timeout)
				}
				if s.CommandsNetwork != tc.network || s.CommandsAfterCode != tc.after {
					t.Errorf("CommandsNetwork, CommandsAfterCode = %v, %v; want %v, %v", s.CommandsNetwork, s.CommandsAfterCode, tc.network, tc.after)
				}
				return
			}
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("got %v, want a *spec.Error", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestCommandsFlags: every commands key is a flag, underscores as dashes,
// and a bad value given as a flag names the flag.
func TestCommandsFlags(t *testing.T) {
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	fl := AddFlags(fs)
	if err := fs.Parse([]string{"--commands", "useradd app", "--commands", "echo a && echo b", "--commands-network", "--commands-after-code", "--commands-timeout", "45m"}); err != nil {
		t.Fatal(err)
	}
	s := &Spec{BaseImage: "scratch"}
	if err := fl.Apply(s, "/"); err != nil {
		t.Fatal(err)
	}
	if len(s.Commands) != 2 || s.Commands[1] != "echo a && echo b" || !s.CommandsNetwork || !s.CommandsAfterCode {
		t.Errorf("flags gave Commands %q, network %v, after code %v", s.Commands, s.CommandsNetwork, s.CommandsAfterCode)
	}
	if d, err := s.CommandsTimeLimit(); err != nil || d != 45*time.Minute {
		t.Errorf("--commands-timeout 45m: CommandsTimeLimit = %v, %v", d, err)
	}

	fs = pflag.NewFlagSet("t", pflag.ContinueOnError)
	fl = AddFlags(fs)
	if err := fs.Parse([]string{"--commands-timeout", "-1h"}); err != nil {
		t.Fatal(err)
	}
	s = &Spec{BaseImage: "scratch"}
	if err := fl.Apply(s, "/"); err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "flag --commands-timeout: commands_timeout") {
		t.Errorf("--commands-timeout -1h: Validate = %v, want an error naming the flag", err)
	}
}

// TestCommandsSettingsHash: the commands' settings change the tag only
// when there are commands (absent and [] alike), and then network and
// placement do while the time limit, which changes no content, does not.
func TestCommandsSettingsHash(t *testing.T) {
	dir := t.TempDir()
	norm := func(y string) string {
		t.Helper()
		s, err := Parse("kiln.yaml", dir, []byte("base_image: scratch\n"+y))
		if err != nil {
			t.Fatal(err)
		}
		return string(s.Normalized())
	}
	base := norm("")
	for _, y := range []string{
		"commands_network: true\n",
		"commands_after_code: true\n",
		"commands_timeout: 2h\n",
		"commands: []\ncommands_network: true\ncommands_after_code: true\ncommands_timeout: 5m\n",
	} {
		if got := norm(y); got != base {
			t.Errorf("%q without commands changes the normalised spec:\n%s\nwant\n%s", y, got, base)
		}
	}
	with := norm("commands: [make]\n")
	for _, tc := range []struct {
		yaml string
		same bool
	}{
		{"commands: [make]\ncommands_network: false\ncommands_after_code: false\n", true},
		{"commands: [make]\ncommands_timeout: 2h\n", true},
		{"commands: [make]\ncommands_network: true\n", false},
		{"commands: [make]\ncommands_after_code: true\n", false},
	} {
		if got := norm(tc.yaml); (got == with) != tc.same {
			t.Errorf("%q: normalised spec the same as with only commands = %v, want %v\n%s", tc.yaml, got == with, tc.same, got)
		}
	}
}

// TestCommandsScript runs the script of several commands with /bin/sh:
// they run in order, a failure stops the rest with its status, and
// comments, background jobs and here-documents stay within their command.
func TestCommandsScript(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	for _, tc := range []struct {
		name     string
		commands []string
		out      string
		code     int
	}{
		{"in order", []string{"echo a", "echo b"}, "a\nb\n", 0},
		{"comment", []string{"echo a # note", "echo b"}, "a\nb\n", 0},
		{"semicolon and background", []string{"echo a;", "true &", "wait; echo b"}, "a\nb\n", 0},
		{"here-document", []string{"cat <<EOF\nx\nEOF", "echo b"}, "x\nb\n", 0},
		{"multi-line", []string{"for i in 1 2; do\n  echo $i\ndone", "echo b"}, "1\n2\nb\n", 0},
		{"failure stops the rest", []string{"echo a", "exit 3", "echo never"}, "a\n", 3},
		{"false stops the rest", []string{"false", "echo never"}, "", 1},
		{"if inside a command", []string{"if false; then echo no; fi", "echo b"}, "b\n", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Spec{Commands: tc.commands}
			cmd := exec.Command("sh", "-c", s.CommandsScript())
			out, err := cmd.Output()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if string(out) != tc.out || code != tc.code {
				t.Errorf("script %q: output %q exit %d, want %q exit %d", s.CommandsScript(), out, code, tc.out, tc.code)
			}
		})
	}
	if got := (&Spec{}).CommandsScript(); got != "" {
		t.Errorf("no commands: script %q, want empty", got)
	}
}
