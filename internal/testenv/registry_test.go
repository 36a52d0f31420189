package testenv

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestRegistryPlain(t *testing.T) {
	t.Parallel()
	reg := StartRegistry(t, RegistryOptions{})
	if !strings.HasPrefix(reg.Host, "127.0.0.1:") || reg.TLS() || reg.CAFile != "" {
		t.Fatalf("unexpected registry %+v", reg)
	}
	resp, err := http.Get("http://" + reg.Host + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v2/: %s", resp.Status)
	}
}

func TestRegistryAuthTLS(t *testing.T) {
	t.Parallel()
	reg := StartRegistry(t, RegistryOptions{Auth: true})
	if !reg.TLS() || reg.CAFile == "" || reg.Username == "" || reg.Password == "" {
		t.Fatalf("unexpected registry %+v", reg)
	}
	client := &http.Client{Transport: reg.Transport()}

	// Without credentials: 401 with a basic challenge.
	resp, err := client.Get(reg.URL() + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic") {
		t.Fatalf("anonymous GET /v2/: %s %q", resp.Status, resp.Header.Get("WWW-Authenticate"))
	}
	// With a wrong password: 401.
	req, _ := http.NewRequest(http.MethodGet, reg.URL()+"/v2/", nil)
	req.SetBasicAuth(reg.Username, "wrong")
	if resp, err = client.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /v2/ with wrong password: %s", resp.Status)
	}
	// Without the CA the TLS handshake fails.
	if resp, err := http.Get(reg.URL() + "/v2/"); err == nil {
		resp.Body.Close()
		t.Fatal("TLS registry accepted by a client without the test CA")
	}

	// A push and pull with ggcr works with credentials and the CA.
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref := mustRef(t, reg.Host+"/test/random:v1")
	if err := remote.Write(ref, img, reg.RemoteOptions(t.Context())...); err != nil {
		t.Fatalf("push: %v", err)
	}
	got, err := remote.Image(ref, reg.RemoteOptions(t.Context())...)
	if err != nil {
		t.Fatalf("pull: %v", err)
	}
	want, _ := img.Digest()
	if d, _ := got.Digest(); d != want {
		t.Fatalf("pulled digest %s, pushed %s", d, want)
	}
	if !strings.Contains(reg.Log(), "/v2/test/random/manifests/v1") {
		t.Errorf("registry log does not show the manifest push:\n%s", reg.Log())
	}
}

func TestCountingProxy(t *testing.T) {
	t.Parallel()
	for _, auth := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "auth"}[auth], func(t *testing.T) {
			t.Parallel()
			reg := StartRegistry(t, RegistryOptions{Auth: auth})
			proxy := NewCountingProxy(t, reg)
			opts := []remote.Option{remote.WithContext(t.Context()), remote.WithAuth(reg.Authenticator())}

			img, err := random.Image(2048, 3)
			if err != nil {
				t.Fatal(err)
			}
			ref := mustRef(t, proxy.Host+"/test/counted:v1", name.Insecure)
			if err := remote.Write(ref, img, opts...); err != nil {
				t.Fatalf("push through proxy: %v", err)
			}
			c := proxy.Counts()
			// 3 layers + config uploaded, monolithically or in chunks.
			if c.UploadPost != 4 || c.UploadPut != 4 || c.ManifestPut != 1 || c.Mount != 0 {
				t.Errorf("push counts: %+v\nrequests: %+v", c, proxy.Requests())
			}
			if c.BlobHead != 4 {
				t.Errorf("push did %d blob HEADs, want 4 (one existence check per blob): %+v", c.BlobHead, c)
			}
			if c.Other != 0 {
				t.Errorf("unclassified requests: %+v", proxy.Requests())
			}

			// Pushing again uploads nothing.
			proxy.Reset()
			if err := remote.Write(ref, img, opts...); err != nil {
				t.Fatal(err)
			}
			if c := proxy.Counts(); c.UploadPost+c.UploadPatch+c.UploadPut != 0 {
				t.Errorf("re-push uploaded blobs: %+v", c)
			}

			// Copying to another repository of the same registry mounts.
			src, err := remote.Image(ref, opts...)
			if err != nil {
				t.Fatal(err)
			}
			proxy.Reset()
			ref2 := mustRef(t, proxy.Host+"/test/other:v1", name.Insecure)
			if err := remote.Write(ref2, src, opts...); err != nil {
				t.Fatal(err)
			}
			got, err := remote.Image(ref2, opts...)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := got.RawConfigFile(); err != nil {
				t.Fatal(err)
			}
			c = proxy.Counts()
			if c.Mount == 0 || c.ManifestGet != 1 || c.BlobGet != 1 {
				t.Errorf("mount+pull counts: %+v\nrequests: %+v", c, proxy.Requests())
			}
		})
	}
}

func TestProxyFaults(t *testing.T) {
	t.Parallel()
	reg := StartRegistry(t, RegistryOptions{})
	proxy := NewCountingProxy(t, reg)
	proxy.SetFault(func(r *http.Request, kind RequestKind, n int) Fault {
		switch {
		case kind == KindPing && n == 1:
			return Fault{Status: http.StatusServiceUnavailable, Header: http.Header{"Retry-After": {"1"}}}
		case kind == KindPing && n == 2:
			return Fault{Reset: true}
		}
		return Fault{}
	})
	// Fresh connections: net/http silently retries a GET that failed on a
	// reused keep-alive connection, which would hide the reset.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for i, want := range []string{"503", "reset", "200"} {
		resp, err := client.Get(proxy.URL() + "/v2/")
		got := "reset"
		if err == nil {
			got = resp.Status[:3]
			if want == "503" && resp.Header.Get("Retry-After") != "1" {
				t.Errorf("no Retry-After on fault response")
			}
			resp.Body.Close()
		}
		if got != want {
			t.Errorf("request %d: got %s (err %v), want %s", i+1, got, err, want)
		}
	}
	if c := proxy.Counts(); c.Ping != 3 {
		t.Errorf("pings counted: %d, want 3", c.Ping)
	}
	reqs := proxy.Requests()
	if len(reqs) != 3 || !reqs[0].Faulted || !reqs[1].Faulted || reqs[2].Faulted || reqs[2].Status != 200 {
		t.Errorf("request log: %+v", reqs)
	}
}

func mustRef(t testing.TB, s string, opts ...name.Option) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(s, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}
