package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Skopeo runs skopeo with args and returns its stdout; the error includes
// stderr. The test is skipped (failed on CI) when skopeo is missing.
func Skopeo(t testing.TB, args ...string) (string, error) {
	t.Helper()
	Require(t, "skopeo")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "skopeo", args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("skopeo %s: %w\nstderr:\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// SkopeoRegistryFlags returns the skopeo flags to reach reg: --tls-verify=false
// for a plain-HTTP registry, --cert-dir with its CA and --creds otherwise.
// For copy, which has --src-/--dest- variants, pass prefix "src-" or
// "dest-"; for inspect pass "".
func SkopeoRegistryFlags(reg *Registry, prefix string) []string {
	if reg == nil {
		return nil
	}
	if !reg.TLS() {
		return []string{"--" + prefix + "tls-verify=false"}
	}
	flags := []string{"--" + prefix + "cert-dir=" + filepath.Dir(reg.CAFile)}
	if reg.Username != "" {
		flags = append(flags, "--"+prefix+"creds="+reg.Username+":"+reg.Password)
	}
	return flags
}

// SkopeoInspect runs skopeo inspect on ref, a transport reference such as
// "docker://HOST/repo:tag" or "oci:DIR:tag" (a bare "HOST/repo:tag" gets
// "docker://" prepended), with the flags to reach reg (nil for
// non-registry transports) and any extra flags (e.g. "--raw", "--config"),
// and returns the raw JSON output, failing the test on error.
func SkopeoInspect(t testing.TB, reg *Registry, ref string, extra ...string) []byte {
	t.Helper()
	if !strings.Contains(ref, ":/") && !strings.HasPrefix(ref, "oci:") && !strings.HasPrefix(ref, "oci-archive:") && !strings.HasPrefix(ref, "docker-archive:") && !strings.HasPrefix(ref, "dir:") {
		ref = "docker://" + ref
	}
	args := append([]string{"inspect"}, SkopeoRegistryFlags(reg, "")...)
	args = append(args, extra...)
	args = append(args, ref)
	out, err := Skopeo(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(out)
}

// SkopeoInspectInfo is the part of skopeo inspect's default output tests
// usually look at.
type SkopeoInspectInfo struct {
	Name         string
	Digest       string
	Architecture string
	Os           string
	Layers       []string
	Env          []string
	Labels       map[string]string
}

// DecodeSkopeoInspect decodes skopeo inspect's default output.
func DecodeSkopeoInspect(t testing.TB, data []byte) SkopeoInspectInfo {
	t.Helper()
	var info SkopeoInspectInfo
	if err := json.Unmarshal(data, &info); err != nil {
		t.Fatalf("decoding skopeo inspect output: %v\n%s", err, data)
	}
	return info
}

// UmociUnpack unpacks the image tagged tag of the OCI image layout at
// layoutDir into a new runtime bundle with umoci (as root, so ownership is
// preserved) and returns the bundle's rootfs directory.
func UmociUnpack(t testing.TB, layoutDir, tag string) string {
	t.Helper()
	Require(t, "umoci")
	RequireRoot(t)
	bundle := filepath.Join(t.TempDir(), "bundle")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "umoci", "unpack", "--image", layoutDir+":"+tag, bundle)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("umoci unpack --image %s:%s: %v\n%s", layoutDir, tag, err, out)
	}
	return filepath.Join(bundle, "rootfs")
}
