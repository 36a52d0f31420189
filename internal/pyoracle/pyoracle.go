// Package pyoracle runs the Python scripts that kiln's differential tests
// compare against: pip's vendored pypa/packaging, which is what pip itself
// uses for versions, markers and wheel tags. It is used only by tests.
package pyoracle

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"testing"
)

// Run sends req as JSON to the Python script at script and decodes its JSON
// answer into resp. probe is a Python statement that must succeed for the
// oracle to be usable (an import of the packaging module the script needs);
// when python3 or the module is missing the test is skipped, or fails when
// CI=true, since CI must run the differential tests. KILN_PACKAGING_PATH
// points the scripts at another packaging release and skips the probe.
func Run(t testing.TB, script, probe string, req, resp any) {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		unavailable(t, "python3 is not on PATH")
	}
	if os.Getenv("KILN_PACKAGING_PATH") == "" {
		if err := exec.Command(py, "-c", probe).Run(); err != nil {
			unavailable(t, "python3 cannot run "+probe)
		}
	}
	in, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, script)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, stderr.String())
	}
	if err := json.Unmarshal(out, resp); err != nil {
		t.Fatalf("decode the output of %s: %v", script, err)
	}
}

func unavailable(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s: the differential tests against pypa/packaging must run in CI (install python3 with pip)", why)
	}
	t.Skipf("%s; differential tests against pypa/packaging skipped", why)
}
