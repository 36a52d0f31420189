package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/internal/testenv"
)

// TestE2ESBOM: kiln build attaches an SPDX SBOM that lists exactly the
// image's Debian packages (its dpkg status, as podman sees it) and its
// wheels (the venv's *.dist-info), with the sha256 of every file kiln
// downloaded; Debian's registry has no referrers API, so skopeo finds it
// under the referrers tag; kiln sbom prints it; a build of cache hits on a
// fresh runner writes the same SBOM (into an OCI layout here); CycloneDX
// on request.
func TestE2ESBOM(t *testing.T) {
	reg, base := e2eParent(t, "podman", "skopeo", "dpkg-deb", "apt-ftparchive")
	repo, key := e2eAptRepo(t, testenv.DebPackage{
		Name: "kiln-sbom-probe", Version: "2:1.0-1",
		Files: map[string]string{"/usr/share/kiln-sbom-probe/README": "probe\n"},
	})
	index := e2eWheelIndex(t)
	spec := "name: sbom-app\nregistry: " + reg.Host + "\nbase_image: " + base +
		"\napt_packages: [kiln-sbom-probe]\napt_sources:\n  - " + repo.Line +
		"\npackages: [python-dateutil]\npip_index: " + index + "\n"
	files := map[string]string{"repo-key.asc": string(key)}
	dir := writeSpec(t, spec, files)
	ref, res := buildRef(t, testenv.RunOptions{Dir: dir})
	show(t, "$ kiln build", res.Stderr)
	if !strings.Contains(res.Stderr, "sbom: spdx SBOM of") {
		t.Errorf("the build does not report its SBOM:\n%s", res.Stderr)
	}

	out := testenv.RunKiln(t, testenv.RunOptions{Dir: dir}, "sbom")
	if out.Code != 0 {
		t.Fatalf("kiln sbom: %s", out)
	}
	var doc struct {
		SPDXVersion string `json:"spdxVersion"`
		Packages    []struct {
			Name, VersionInfo string
			Checksums         []struct{ Algorithm, ChecksumValue string }
			ExternalRefs      []struct{ ReferenceLocator string }
		}
	}
	if err := json.Unmarshal([]byte(out.Stdout), &doc); err != nil || doc.SPDXVersion != "SPDX-2.3" {
		t.Fatalf("kiln sbom printed no SPDX 2.3 document (%v):\n%.400s", err, out.Stdout)
	}
	var debs, wheels []string
	sums := map[string]string{}
	for _, p := range doc.Packages {
		for _, r := range p.ExternalRefs {
			switch {
			case strings.HasPrefix(r.ReferenceLocator, "pkg:deb/"):
				debs = append(debs, p.Name+" "+p.VersionInfo)
			case strings.HasPrefix(r.ReferenceLocator, "pkg:pypi/"):
				wheels = append(wheels, strings.ToLower(strings.ReplaceAll(p.Name, "-", "_"))+" "+p.VersionInfo)
			}
		}
		if len(p.Checksums) > 0 {
			sums[p.Name] = p.Checksums[0].ChecksumValue
		}
	}

	pm := testenv.NewPodman(t)
	pm.UseRegistry(reg)
	pm.Pull(ref)
	status, err := pm.Run(ref, "dpkg-query", "-W", "-f", "${db:Status-Status} ${Package} ${Version}\n")
	if err != nil {
		t.Fatalf("dpkg-query in the image: %v\n%s", err, status)
	}
	var installed []string
	for _, l := range strings.Split(strings.TrimSpace(status), "\n") {
		if st, rest, _ := strings.Cut(l, " "); st == "installed" {
			installed = append(installed, rest)
		}
	}
	sort.Strings(debs)
	sort.Strings(installed)
	if !slices.Equal(debs, installed) {
		t.Errorf("the SBOM's Debian packages differ from the image's dpkg status:\nSBOM:  %v\nimage: %v", debs, installed)
	}
	if !slices.Contains(debs, "kiln-sbom-probe 2:1.0-1") || len(sums["kiln-sbom-probe"]) != 64 {
		t.Errorf("the SBOM lacks the installed .deb with its sha256: %v %q", debs, sums["kiln-sbom-probe"])
	}
	distInfo, err := pm.Run(ref, "/bin/sh", "-c", "cd /opt/venv/lib/python3*/site-packages && ls -d *.dist-info")
	if err != nil {
		t.Fatal(err)
	}
	var inVenv []string
	for _, d := range strings.Fields(distInfo) {
		nv := strings.TrimSuffix(d, ".dist-info")
		i := strings.LastIndex(nv, "-")
		inVenv = append(inVenv, strings.ToLower(nv[:i])+" "+nv[i+1:])
	}
	sort.Strings(wheels)
	sort.Strings(inVenv)
	if !slices.Equal(wheels, inVenv) || len(wheels) != 2 { // python-dateutil and six
		t.Errorf("the SBOM's wheels differ from the venv's dist-info:\nSBOM: %v\nvenv: %v", wheels, inVenv)
	}

	compareWithSyft(t, ref, debs, wheels)

	digest := ref[strings.Index(ref, "@sha256:")+len("@sha256:"):]
	raw, err := exec.Command("skopeo", "inspect", "--raw", "--tls-verify=false", "docker://"+reg.Host+"/sbom-app:sha256-"+digest).CombinedOutput()
	if err != nil || !strings.Contains(string(raw), "application/spdx+json") {
		t.Errorf("skopeo does not see the SBOM under the referrers tag: %v\n%s", err, raw)
	}

	// A fresh runner: every step from kiln-cache; the same SBOM, here
	// read from the OCI layout it also writes.
	fresh := writeSpec(t, spec, files)
	layoutDir := filepath.Join(testenv.UserDir(t), "out")
	_, again := buildRef(t, testenv.RunOptions{Dir: fresh}, "--force", "--oci-layout", layoutDir)
	if strings.Contains(again.Stderr, "(built)") {
		t.Errorf("the second build built a layer:\n%s", again.Stderr)
	}
	if got := layoutSBOM(t, layoutDir, "application/spdx+json"); got != out.Stdout {
		t.Errorf("the SBOM of a build of cache hits differs from the first:\n%s\nvs\n%s", got, out.Stdout)
	}

	cdx := testenv.RunKiln(t, testenv.RunOptions{Dir: writeSpec(t, spec, files)}, "build", "--force", "--sbom-format", "cyclonedx")
	if cdx.Code != 0 {
		t.Fatalf("build with --sbom-format cyclonedx: %s", cdx)
	}
	c := testenv.RunKiln(t, testenv.RunOptions{Dir: dir}, "sbom", "--sbom-format", "cyclonedx")
	if c.Code != 0 || !strings.Contains(c.Stdout, `"bomFormat": "CycloneDX"`) || !strings.Contains(c.Stdout, "pkg:pypi/six@") {
		t.Errorf("kiln sbom --sbom-format cyclonedx: %s", c)
	}
	off := testenv.RunKiln(t, testenv.RunOptions{Dir: writeSpec(t, strings.Replace(spec, "name: sbom-app", "name: sbom-off", 1), files)}, "build", "--sbom=false")
	if off.Code != 0 || strings.Contains(off.Stderr, "sbom:") {
		t.Errorf("--sbom=false: %s", off)
	}
	none := testenv.RunKiln(t, testenv.RunOptions{Dir: writeSpec(t, strings.Replace(spec, "name: sbom-app", "name: sbom-off", 1), files)}, "sbom")
	if none.Code != 1 || !strings.Contains(none.Stderr, "no SBOM attached") {
		t.Errorf("kiln sbom of an image without one: %s", none)
	}
}

// layoutSBOM returns the content of the artifact of type mediaType in the
// OCI layout dir.
func layoutSBOM(t *testing.T, dir, mediaType string) string {
	t.Helper()
	p, im := testenv.LayoutIndex(t, dir)
	for _, m := range im.Manifests {
		if m.ArtifactType != mediaType {
			continue
		}
		img, err := p.Image(m.Digest)
		if err != nil {
			t.Fatal(err)
		}
		mf, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", mf.Layers[0].Digest.Hex))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	t.Fatalf("the layout %s holds no %s artifact", dir, mediaType)
	return ""
}

// compareWithSyft scans the pushed image ref with syft ($KILN_SYFT, or
// syft on PATH; .ci/run builds it) and fails on any Debian or Python
// package that kiln's SBOM (debs, wheels: "name version", wheels with
// normalised names) and syft's scan do not both list. syft's other
// package types are the parent's files seen again (see the README).
func compareWithSyft(t *testing.T, ref string, debs, wheels []string) {
	t.Helper()
	syft := os.Getenv("KILN_SYFT")
	if syft == "" {
		syft, _ = exec.LookPath("syft")
	}
	if syft == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("no syft: .ci/run installs it and sets KILN_SYFT")
		}
		t.Log("no syft ($KILN_SYFT or on PATH): kiln's SBOM is not compared with syft's scan")
		return
	}
	cmd := exec.Command(syft, "scan", "registry:"+ref, "-o", "syft-json", "-q")
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "SYFT_CHECK_FOR_APP_UPDATE=false", "SYFT_REGISTRY_INSECURE_USE_HTTP=true")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("syft scan %s: %v\n%s", ref, err, out)
	}
	var doc struct {
		Artifacts []struct{ Name, Version, Type string }
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("syft printed no syft-json document: %v\n%.400s", err, out)
	}
	var sDebs, sWheels []string
	others := map[string]int{}
	for _, a := range doc.Artifacts {
		switch a.Type {
		case "deb":
			sDebs = append(sDebs, a.Name+" "+a.Version)
		case "python":
			sWheels = append(sWheels, strings.ToLower(strings.ReplaceAll(a.Name, "-", "_"))+" "+a.Version)
		default:
			others[a.Type]++
		}
	}
	sort.Strings(sDebs)
	sort.Strings(sWheels)
	if d := symDiff(debs, sDebs); len(d) > 0 {
		t.Errorf("kiln's SBOM and syft disagree on Debian packages (- kiln only, + syft only): %v", d)
	}
	if d := symDiff(wheels, sWheels); len(d) > 0 {
		t.Errorf("kiln's SBOM and syft disagree on Python packages (- kiln only, + syft only): %v", d)
	}
	t.Logf("syft agrees on %d Debian and %d Python packages; its other finds: %v", len(sDebs), len(sWheels), others)
}

// symDiff returns "-x" for each x only in a and "+x" for each only in b.
func symDiff(a, b []string) []string {
	var d []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			d = append(d, "-"+x)
		}
	}
	for _, x := range b {
		if !slices.Contains(a, x) {
			d = append(d, "+"+x)
		}
	}
	return d
}
