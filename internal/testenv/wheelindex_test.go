package testenv

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func wheelFixtures(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(RepoRoot(t), "..", "shared", "fixtures", "wheels", "pypi")
	if _, err := os.Stat(dir); err != nil {
		skipOrFail(t, "wheel fixtures not found: %v", err)
	}
	return dir
}

func get(t *testing.T, url, accept string, user, pass string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func TestWheelIndexHTML(t *testing.T) {
	t.Parallel()
	dir := wheelFixtures(t)
	url := WheelIndex(t, dir)

	_, root := get(t, url, "", "", "")
	for _, p := range []string{`href="flask/"`, `href="pydantic-core/"`, `href="typing-extensions/"`} {
		if !strings.Contains(root, p) {
			t.Errorf("root page lacks %s:\n%s", p, root)
		}
	}

	resp, page := get(t, url+"Pydantic_Core", "", "", "") // redirected to the normalized name
	if resp.Request.URL.Path != "/simple/pydantic-core/" {
		t.Errorf("not redirected to normalized name: %s", resp.Request.URL)
	}
	m := regexp.MustCompile(`<a href="\.\./\.\./files/([^"#]+)#sha256=([0-9a-f]{64})" data-requires-python="([^"]*)" data-dist-info-metadata="sha256=([0-9a-f]{64})" data-core-metadata="sha256=([0-9a-f]{64})">`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no complete anchor in:\n%s", page)
	}
	if !strings.HasPrefix(m[3], "&gt;=3.") {
		t.Errorf("requires-python not HTML-escaped: %q", m[3])
	}
	data, err := os.ReadFile(filepath.Join(dir, m[1]))
	if err != nil {
		t.Fatal(err)
	}
	_, file := get(t, strings.TrimSuffix(url, "simple/")+"files/"+m[1], "", "", "")
	if sum := sha256.Sum256([]byte(file)); hex.EncodeToString(sum[:]) != m[2] || file != string(data) {
		t.Errorf("served file does not match its sha256 anchor")
	}
	_, md := get(t, strings.TrimSuffix(url, "simple/")+"files/"+m[1]+".metadata", "", "", "")
	if sum := sha256.Sum256([]byte(md)); hex.EncodeToString(sum[:]) != m[4] || !strings.Contains(md, "Name: pydantic_core") {
		t.Errorf("metadata file does not match its hash or is wrong:\n%.300s", md)
	}

	if resp, _ := get(t, url+"no-such-project/", "", "", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown project: %s", resp.Status)
	}
}

func TestWheelIndexJSON(t *testing.T) {
	t.Parallel()
	url := WheelIndex(t, wheelFixtures(t))
	resp, body := get(t, url+"requests/", PEP691JSON, "", "")
	if ct := resp.Header.Get("Content-Type"); ct != PEP691JSON {
		t.Fatalf("Content-Type %q", ct)
	}
	var page struct {
		Meta struct {
			APIVersion string `json:"api-version"`
		}
		Name  string
		Files []struct {
			Filename       string
			URL            string
			Hashes         map[string]string
			RequiresPython string            `json:"requires-python"`
			CoreMetadata   map[string]string `json:"core-metadata"`
		}
		Versions []string
	}
	if err := json.Unmarshal([]byte(body), &page); err != nil {
		t.Fatal(err)
	}
	if page.Meta.APIVersion != "1.1" || page.Name != "requests" || len(page.Files) != 1 || len(page.Versions) != 1 {
		t.Fatalf("page: %s", body)
	}
	f := page.Files[0]
	if f.URL != "../../files/"+f.Filename || len(f.Hashes["sha256"]) != 64 || f.RequiresPython == "" || len(f.CoreMetadata["sha256"]) != 64 {
		t.Errorf("file entry: %+v", f)
	}
	_, root := get(t, url, PEP691JSON, "", "")
	if !strings.Contains(root, `"name": "PyYAML"`) {
		t.Errorf("JSON root: %s", root)
	}
}

func TestWheelIndexAuth(t *testing.T) {
	t.Parallel()
	ws := StartWheelIndex(t, wheelFixtures(t), WheelIndexOptions{Username: "alice", Password: "s3cret"})
	if resp, _ := get(t, ws.URL, "", "", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous: %s", resp.Status)
	}
	if resp, _ := get(t, ws.URL, "", "alice", "s3cret"); resp.StatusCode != http.StatusOK {
		t.Errorf("with credentials: %s", resp.Status)
	}
	reqs := ws.Requests()
	if len(reqs) != 2 || reqs[0].Authorization != "" || !strings.HasPrefix(reqs[1].Authorization, "Basic ") {
		t.Errorf("requests: %+v", reqs)
	}
	if !strings.Contains(ws.AuthURL(), "alice:s3cret@127.0.0.1:") {
		t.Errorf("AuthURL %s", ws.AuthURL())
	}
}

// TestWheelIndexPip checks the index against a real client.
func TestWheelIndexPip(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("python3", "-c", "import pip; print(pip.__version__)").Output()
	if err != nil {
		t.Skip("pip not available")
	}
	// pip before 23.1 crashes on the PEP 691 JSON form of
	// dist-info-metadata (a dict of hashes), which PyPI serves too.
	var major, minor int
	fmt.Sscanf(strings.TrimSpace(string(out)), "%d.%d", &major, &minor)
	if major < 23 || (major == 23 && minor < 1) {
		t.Skipf("pip %s cannot read PEP 691 metadata hashes (fixed in pip 23.1)", strings.TrimSpace(string(out)))
	}
	url := WheelIndex(t, wheelFixtures(t))
	dest := t.TempDir()
	cmd := exec.CommandContext(t.Context(), "python3", "-m", "pip", "download", "--no-cache-dir", "--disable-pip-version-check",
		"--index-url", url, "--only-binary=:all:", "--python-version", "3.11", "--platform", "manylinux2014_x86_64",
		"--dest", dest, "flask", "requests")
	cmd.Env = append(os.Environ(), "PIP_CONFIG_FILE=/dev/null")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pip download: %v\n%s", err, out)
	}
	got, _ := filepath.Glob(filepath.Join(dest, "*.whl"))
	if len(got) < 10 {
		t.Errorf("pip downloaded only %d wheels: %v", len(got), got)
	}
}
