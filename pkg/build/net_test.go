package build

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/kiln-build/kiln/internal/testenv"
	"github.com/kiln-build/kiln/pkg/auth"
	"github.com/kiln-build/kiln/pkg/cache"
)

// TestLockAptSourceHung checks, through build.Lock, that an apt
// repository that never answers, or sends headers and then nothing, fails
// the build within Auth.Fetch's bounds with an error naming the URL.
func TestLockAptSourceHung(t *testing.T) {
	reg := newRegistry(t)
	pushParent(t, reg.host+"/base:x", "amd64")
	release := make(chan struct{})
	stall := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("-----BEGIN PGP SIGNED MESSAGE-----\n"))
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(stall.Close)
	t.Cleanup(func() { close(release) })

	key, err := openpgp.NewEntity("kiln test", "", "test@example.invalid", &packet.Config{RSABits: 2048})
	must(t, err)
	var pub bytes.Buffer
	aw, err := armor.Encode(&pub, openpgp.PublicKeyType, nil)
	must(t, err)
	must(t, key.Serialize(aw))
	must(t, aw.Close())

	tests := []struct{ name, uri, want string }{
		{"never answers", "http://" + testenv.HungListener(t) + "/debian", "timeout awaiting response headers"},
		{"headers then nothing", stall.URL + "/debian", "no progress for 300ms"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := appDir(t)
			must(t, os.WriteFile(filepath.Join(dir, "key.asc"), pub.Bytes(), 0o644))
			s := loadSpec(t, dir, "name: app\nregistry: "+reg.host+"\nbase_image: "+reg.host+"/base:x\n"+
				"apt_packages: [hello]\napt_sources: [\"deb [signed-by=key.asc] "+tc.uri+" stable main\"]\n")
			p, err := NewPlan(context.Background(), s, PlanOptions{Epoch: time.Unix(0, 0)})
			must(t, err)
			c, err := cache.Open(t.TempDir())
			must(t, err)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			bound := auth.FetchTimeouts{Connect: 300 * time.Millisecond, ResponseHeader: 300 * time.Millisecond, Stall: 300 * time.Millisecond}
			_, err = Lock(ctx, p, Options{Cache: c, Auth: auth.Options{Fetch: bound}})
			if err == nil {
				t.Fatal("no error")
			}
			if ctx.Err() != nil {
				t.Fatalf("only the test's own deadline stopped the build: %v", err)
			}
			for _, w := range []string{tc.uri + "/dists/stable/InRelease", tc.want} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}
