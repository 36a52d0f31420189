package main

import (
	"archive/tar"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/kiln-build/kiln/internal/testenv"
)

// secretScan collects everything kiln produced and checks that no secret
// appears in it, looking inside gzip and zstd streams and tar archives.
type secretScan struct {
	t       *testing.T
	secrets []string
	scanned int
}

func newSecretScan(t *testing.T, secrets ...string) *secretScan {
	return &secretScan{t: t, secrets: secrets}
}

func (s *secretScan) bytes(where string, data []byte) {
	s.t.Helper()
	s.bytesDepth(where, data, 0)
}

func (s *secretScan) bytesDepth(where string, data []byte, depth int) {
	s.t.Helper()
	s.scanned++
	for _, sec := range s.secrets {
		if bytes.Contains(data, []byte(sec)) {
			s.t.Errorf("secret %.4s… found in %s", sec, where)
		}
	}
	if depth > 4 {
		return
	}
	switch {
	case bytes.HasPrefix(data, []byte{0x1f, 0x8b}):
		if zr, err := gzip.NewReader(bytes.NewReader(data)); err == nil {
			if out, err := io.ReadAll(io.LimitReader(zr, 1<<30)); err == nil {
				s.bytesDepth(where+" (gunzipped)", out, depth+1)
			}
		}
	case bytes.HasPrefix(data, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		if zr, err := zstd.NewReader(bytes.NewReader(data)); err == nil {
			if out, err := io.ReadAll(io.LimitReader(zr, 1<<30)); err == nil {
				s.bytesDepth(where+" (unzstd)", out, depth+1)
			}
			zr.Close()
		}
	case len(data) > 512 && string(data[257:262]) == "ustar":
		tr := tar.NewReader(bytes.NewReader(data))
		for {
			h, err := tr.Next()
			if err != nil {
				break
			}
			for _, sec := range s.secrets {
				if strings.Contains(h.Name, sec) || strings.Contains(h.Linkname, sec) || strings.Contains(fmt.Sprint(h.PAXRecords), sec) {
					s.t.Errorf("secret found in the header of %s in %s", h.Name, where)
				}
			}
			if b, err := io.ReadAll(tr); err == nil {
				s.bytesDepth(where+": "+h.Name, b, depth+1)
			}
		}
	}
}

func (s *secretScan) tree(root string) {
	s.t.Helper()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		for _, sec := range s.secrets {
			if strings.Contains(p, sec) {
				s.t.Errorf("secret in the path %s", p)
			}
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		s.bytes(p, data)
		return nil
	})
	if err != nil {
		s.t.Fatalf("scanning %s: %v", root, err)
	}
}

func (s *secretScan) result(where string, r testenv.Result) {
	s.t.Helper()
	s.bytes(where+" stdout", []byte(r.Stdout))
	s.bytes(where+" stderr", []byte(r.Stderr))
}

// image scans a pushed image's manifest, config and every layer.
func (s *secretScan) image(reg *testenv.Registry, ref string) {
	s.t.Helper()
	r, err := name.ParseReference(ref, reg.NameOptions()...)
	if err != nil {
		s.t.Fatal(err)
	}
	img, err := remote.Image(r, reg.RemoteOptions(s.t.Context())...)
	if err != nil {
		s.t.Fatalf("reading %s: %v", ref, err)
	}
	m, err := img.RawManifest()
	if err != nil {
		s.t.Fatal(err)
	}
	s.bytes(ref+" manifest", m)
	c, err := img.RawConfigFile()
	if err != nil {
		s.t.Fatal(err)
	}
	s.bytes(ref+" config", c)
	ls, err := img.Layers()
	if err != nil {
		s.t.Fatal(err)
	}
	for i, l := range ls {
		rc, err := l.Compressed()
		if err != nil {
			s.t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			s.t.Fatal(err)
		}
		s.bytes(fmt.Sprintf("%s layer %d", ref, i), data)
	}
}

func dockerConfig(t *testing.T, dir string, cfg map[string]any) string {
	t.Helper()
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "config.json")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.ChownTree(t, dir, testenv.NobodyUID, testenv.NobodyGID)
	return p
}

func TestE2EAuthAndSecrets(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	testenv.Require(t, "docker-registry", "setpriv")
	testenv.RequireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{Auth: true})
	base := reg.Host + "/" + tinyParent(t, reg)
	userPass := reg.Username + ":" + reg.Password
	basicAuth := base64.StdEncoding.EncodeToString([]byte(userPass))
	scan := newSecretScan(t, reg.Password, basicAuth)
	auths := map[string]any{"auths": map[string]any{reg.Host: map[string]string{"auth": basicAuth}}}
	ca := []string{"--registry-ca", reg.CAFile}

	// A credential helper on nobody's PATH.
	helperDir := testenv.PublicDir(t)
	helper := fmt.Sprintf("#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread server\nprintf '{\"ServerURL\":\"%%s\",\"Username\":\"%s\",\"Secret\":\"%s\"}' \"$server\"\n", reg.Username, reg.Password)
	if err := os.WriteFile(filepath.Join(helperDir, "docker-credential-kilntest"), []byte(helper), 0o755); err != nil {
		t.Fatal(err)
	}
	helperPath := "PATH=" + helperDir + ":" + testenv.ParentPath

	var refs []string
	for i, tc := range []struct {
		name   string
		config map[string]any // written to $HOME/.docker/config.json
		file   map[string]any // written elsewhere and named by registry_config
		flag   bool           // name the file with --registry-config instead
		env    []string
		args   []string
	}{
		{name: "docker config", config: auths, args: ca},
		{name: "credHelpers", config: map[string]any{"credHelpers": map[string]string{reg.Host: "kilntest"}}, env: []string{helperPath}, args: ca},
		{name: "credsStore", config: map[string]any{"credsStore": "kilntest"}, env: []string{helperPath}, args: ca},
		{name: "registry_config", file: auths, args: ca},
		{name: "--registry-config", file: auths, flag: true, args: ca},
		{name: "SSL_CERT_FILE", config: auths, env: []string{"SSL_CERT_FILE=" + reg.CAFile}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home := testenv.UserDir(t)
			if tc.config != nil {
				dockerConfig(t, filepath.Join(home, ".docker"), tc.config)
			}
			spec := fmt.Sprintf("name: authed\nregistry: %s\nbase_image: %s\nsource_root: app\n", reg.Host, base)
			common := append([]string(nil), tc.args...)
			if tc.file != nil {
				p := dockerConfig(t, testenv.UserDir(t), tc.file)
				if tc.flag {
					common = append(common, "--registry-config", p)
				} else {
					spec += "registry_config: " + p + "\n"
				}
			}
			dir := writeSpec(t, spec, map[string]string{"app/main.py": fmt.Sprintf("print('auth %d')\n", i)})
			opts := testenv.RunOptions{Dir: dir, Home: home, Env: tc.env}
			out := filepath.Join(dir, "out")
			args := append([]string{"build"}, common...)
			args = append(args, "--oci-layout", filepath.Join(out, "layout"), "--tarball", filepath.Join(out, "image.tar"))
			res := testenv.RunKiln(t, opts, args...)
			scan.result(tc.name+" build", res)
			if res.Code != 0 {
				t.Fatalf("kiln build: %s", res)
			}
			line := lastLine(res.Stdout)
			repoTag, digest, _ := strings.Cut(line, "@")
			refs = append(refs, repoTag[:strings.LastIndex(repoTag, ":")]+"@"+digest)
			lock := testenv.RunKiln(t, opts, append([]string{"lock"}, common...)...)
			scan.result(tc.name+" lock", lock)
			if lock.Code != 0 {
				t.Errorf("kiln lock: %s", lock)
			}
			ex := testenv.RunKiln(t, opts, append([]string{"exists"}, common...)...)
			scan.result(tc.name+" exists", ex)
			if ex.Code != 0 {
				t.Errorf("kiln exists after the build: %s; want 0", ex)
			}
			scan.tree(out)
			scan.tree(dir)
			scan.tree(filepath.Join(home, ".cache"))
		})
	}
	for _, ref := range refs {
		scan.image(reg, ref)
	}

	home := testenv.UserDir(t)
	dockerConfig(t, filepath.Join(home, ".docker"), auths)
	dir := writeSpec(t, fmt.Sprintf("name: authed\nregistry: %s\nbase_image: %s\nsource_root: app\n", reg.Host, base), map[string]string{"app/main.py": "print('fail')\n"})
	opts := testenv.RunOptions{Dir: dir, Home: home}

	// Without the CA: a clear TLS error, exit code 1.
	res := testenv.RunKiln(t, opts, "build")
	scan.result("no CA", res)
	if res.Code != 1 || !strings.Contains(res.Stderr, "certificate signed by unknown authority") || !strings.Contains(res.Stderr, reg.Host) {
		t.Errorf("build without the CA: %s; want exit code 1 and a certificate error naming %s", res, reg.Host)
	}

	// Wrong credentials: exit code 1 naming the registry, never the password.
	wrongPass := "wrong-" + reg.Password[:8] + "-pw"
	wrongAuth := base64.StdEncoding.EncodeToString([]byte(reg.Username + ":" + wrongPass))
	dockerConfig(t, filepath.Join(home, ".docker"), map[string]any{"auths": map[string]any{reg.Host: map[string]string{"auth": wrongAuth}}})
	wrong := newSecretScan(t, wrongPass, wrongAuth)
	res = testenv.RunKiln(t, opts, append([]string{"build"}, ca...)...)
	scan.result("wrong credentials", res)
	wrong.result("wrong credentials", res)
	if res.Code != 1 || !strings.Contains(res.Stderr, reg.Host) || !strings.Contains(strings.ToLower(res.Stderr), "unauthorized") {
		t.Errorf("build with wrong credentials: %s; want exit code 1, naming %s and the refusal", res, reg.Host)
	}
	// kiln exists cannot tell.
	res = testenv.RunKiln(t, opts, append([]string{"exists"}, ca...)...)
	wrong.result("exists with wrong credentials", res)
	if res.Code != 2 || !strings.Contains(res.Stderr, "cannot tell") {
		t.Errorf("exists with wrong credentials: %s; want exit code 2, cannot tell", res)
	}
	if scan.scanned < 50 {
		t.Errorf("only %d items scanned for secrets; the scan looks at too little", scan.scanned)
	}
}

func TestE2EIndexCredentials(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	testenv.Require(t, "docker-registry", "debootstrap", "setpriv")
	testenv.RequireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	testenv.ParentImage(t, reg)
	base := reg.Host + "/" + testenv.ParentRepository + ":" + testenv.ParentTag
	const user, password = "pipuser", "s3cret-index-pa55word"
	index := testenv.StartWheelIndex(t, filepath.Join(testenv.RepoRoot(t), "..", "shared", "fixtures", "wheels", "pypi"),
		testenv.WheelIndexOptions{Username: user, Password: password})
	scan := newSecretScan(t, password, base64.StdEncoding.EncodeToString([]byte(user+":"+password)))

	netrc := "machine 127.0.0.1 login " + user + " password " + password + "\n"
	// ImageSpec's pip_secret_mounts: a .netrc kept outside the build
	// context, named by the spec, the index given by pip_extra_args.
	secrets := testenv.UserDir(t)
	if err := os.WriteFile(filepath.Join(secrets, "index.netrc"), []byte(netrc), 0o600); err != nil {
		t.Fatal(err)
	}
	testenv.ChownTree(t, secrets, testenv.NobodyUID, testenv.NobodyGID)
	mounted := fmt.Sprintf("pip_secret_mounts: [[%s, /root/.netrc]]\npip_extra_args: '--index-url %s --no-cache-dir'\npython_exec: /usr/bin/python3\nbuilder: kiln\n", filepath.Join(secrets, "index.netrc"), index.URL)
	for _, tc := range []struct {
		name, index, netrc, extra string
	}{
		{"in the URL", index.AuthURL(), "", ""},
		{".netrc", index.URL, netrc, ""},
		{"pip_secret_mounts", "", "", mounted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(index.Requests())
			home := testenv.UserDir(t)
			if tc.netrc != "" {
				if err := os.WriteFile(filepath.Join(home, ".netrc"), []byte(tc.netrc), 0o600); err != nil {
					t.Fatal(err)
				}
				testenv.ChownTree(t, home, testenv.NobodyUID, testenv.NobodyGID)
			}
			spec := fmt.Sprintf("name: pysecret\nregistry: %s\nbase_image: %s\npackages: [six]\n", reg.Host, base) + tc.extra
			if tc.index != "" {
				spec += "pip_index: " + tc.index + "\n"
			}
			dir := writeSpec(t, spec, nil)
			opts := testenv.RunOptions{Dir: dir, Home: home}
			out := filepath.Join(dir, "out")
			res := testenv.RunKiln(t, opts, "build", "--oci-layout", filepath.Join(out, "layout"), "--tarball", filepath.Join(out, "image.tar"))
			scan.result("build", res)
			if res.Code != 0 {
				t.Fatalf("kiln build: %s", res)
			}
			line := lastLine(res.Stdout)
			repoTag, digest, _ := strings.Cut(line, "@")
			lock := testenv.RunKiln(t, opts, "lock")
			scan.result("lock", lock)
			if lock.Code != 0 {
				t.Errorf("kiln lock: %s", lock)
			}
			// kiln lock resolves afresh: it says which interpreter.
			if tc.extra != "" && !strings.Contains(lock.Stderr, "at /usr/bin/python3.") {
				t.Errorf("python_exec: /usr/bin/python3 did not choose the Debian interpreter:\n%s", lock.Stderr)
			}
			// The index saw the credentials: the test would prove nothing
			// if they were never used.
			authed := 0
			for _, r := range index.Requests()[before:] {
				if r.Authorization != "" {
					authed++
				}
			}
			if authed == 0 {
				t.Errorf("no request to the index carried credentials")
			}
			scans := []*secretScan{scan}
			if tc.extra != "" {
				// Not even the secret file's name enters the image, the
				// lock or the cache (its keys' clear text).
				scans = append(scans, newSecretScan(t, "index.netrc"))
			}
			if err := os.Remove(filepath.Join(dir, "kiln.yaml")); err != nil {
				t.Fatal(err)
			}
			for _, sc := range scans {
				sc.image(reg, repoTag[:strings.LastIndex(repoTag, ":")]+"@"+digest)
				sc.tree(out)
				sc.tree(dir) // kiln.lock and anything else kiln wrote beside the spec
				sc.tree(filepath.Join(home, ".cache"))
			}
		})
	}
}
