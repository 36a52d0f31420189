package sandbox

import (
	"strings"
	"testing"
)

// TestContainerAdvice: each way the sandbox fails in a default container
// (seen in podman with --cap-drop=all) is explained by what the container
// needs; other failures get no advice.
func TestContainerAdvice(t *testing.T) {
	for _, tc := range []struct {
		msg  string
		want string
	}{
		{"sandbox: set the host name in the new UTS namespace: operation not permitted: the sandbox needs unprivileged user namespaces", "--security-opt seccomp=unconfined"},
		{"sandbox: cannot create a user namespace: operation not permitted", "seccomp profile denies user namespaces"},
		{"sandbox: overlayfs: upperdir /home/kiln/.cache/kiln/unpacked/.tmp-run-1/upper: invalid argument [kernel: overlay: filesystem on /x not supported as upperdir]", "--tmpfs /home/kiln/.cache:rw,exec,mode=1777"},
		{`sandbox: set up for ["/bin/sh"]: mount proc on /proc: operation not permitted [kernel: VFS: Mount too revealing]`, "--security-opt unmask=/proc/*"},
		{"sandbox: upper directory: no space left on device", ""},
	} {
		got := containerAdvice(tc.msg)
		if tc.want == "" {
			if got != "" {
				t.Errorf("containerAdvice(%q) = %q, want none", tc.msg, got)
			}
			continue
		}
		if !strings.Contains(got, tc.want) || !strings.Contains(got, strings.Join(ContainerFlags(), " ")) {
			t.Errorf("containerAdvice(%q) = %q, want it to contain %q and every flag the container needs", tc.msg, got, tc.want)
		}
	}
}
