package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNetCLIErrors checks, through the CLI, two offline errors: a file
// included from requirements.txt that is not a requirements file is named
// by file and line with none of its content shown, and a bad
// percent-escape in an index password says how to fix it without showing
// the password. Both exit 2.
func TestNetCLIErrors(t *testing.T) {
	const secret = "FAKE-ENV-T0KEN-xyzzy"
	tests := []struct {
		name  string
		spec  string
		files map[string]string
		args  []string
		want  []string
		never []string
	}{
		{
			name:  "environ included",
			spec:  "name: t\nbase_image: scratch\nrequirements: requirements.txt\n",
			files: map[string]string{"requirements.txt": "six\n-r secret.txt\n", "secret.txt": "PATH=/bin\x00TOKEN=" + secret + "\x00"},
			args:  []string{"build"},
			want:  []string{"requirements.txt:2:", "secret.txt:1:", "not a requirement"},
			never: []string{secret, "TOKEN="},
		},
		{
			name:  "bad escape in the index password",
			spec:  "name: t\nbase_image: scratch\npip_index: \"https://u:pa%zzword@127.0.0.1/simple\"\n",
			args:  []string{"name"},
			want:  []string{"kiln.yaml:3: pip_index:", "bad percent-escape", "%25"},
			never: []string{"zzword"},
		},
		{
			name:  "bad escape in an extra index password",
			spec:  "name: t\nbase_image: scratch\npip_extra_index_url: [\"https://u:pa%zzword@127.0.0.1/simple\"]\n",
			args:  []string{"name"},
			want:  []string{"pip_extra_index_url:", "bad percent-escape", "%25"},
			never: []string{"zzword"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.files = mergeFiles(tc.files, map[string]string{"kiln.yaml": tc.spec})
			for n, c := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			args := append(tc.args, "-f", filepath.Join(dir, "kiln.yaml"), "--cache-dir", filepath.Join(dir, "cache"))
			var stdout, stderr strings.Builder
			if code := run(args, &stdout, &stderr); code != exitUsage {
				t.Errorf("exit %d, want %d; stderr: %s", code, exitUsage, stderr.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr %q does not contain %q", stderr.String(), w)
				}
			}
			for _, n := range tc.never {
				if strings.Contains(stderr.String()+stdout.String(), n) {
					t.Errorf("output shows %q: %s", n, stderr.String())
				}
			}
		})
	}
}

func mergeFiles(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}
