//go:build linux

package sandbox_test

import (
	"strings"
	"testing"
)

func TestRunCreatesFiles(t *testing.T) {
	for _, u := range []func(*testing.T) *testUser{func(*testing.T) *testUser { return nobody() }, withRange} {
		usr := u(t)
		t.Run(usr.name, func(t *testing.T) {
			base := rootfs(t, usr)
			r := runAs(t, usr, request{
				Lowers:  []string{base},
				Command: sh("id -u; mkdir -p /opt/x; echo hi > /opt/x/f; chmod 4755 /opt/x/f; ln -s f /opt/x/l; cat /proc/1/cmdline | tr '\\0' ' '; echo; ls /proc | grep -c '^[0-9]'"),
			}).mustSucceed(t)
			t.Logf("output:\n%s", r.Output)
			m, names := entries(t, r.Diff)
			t.Logf("entries: %v", names)
			f, ok := m["opt/x/f"]
			if !ok || f.body != "hi\n" || f.hdr.Mode != 0o4755 || f.hdr.Uid != 0 || f.hdr.Gid != 0 {
				t.Errorf("opt/x/f = %+v", f.hdr)
			}
			if l := m["opt/x/l"]; l.hdr == nil || l.hdr.Linkname != "f" {
				t.Errorf("opt/x/l missing or wrong")
			}
			if !strings.HasPrefix(r.Output, "0\n") {
				t.Errorf("id -u inside is not 0: %q", r.Output)
			}
		})
	}
}
