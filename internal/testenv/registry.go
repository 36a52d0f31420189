package testenv

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/crypto/bcrypt"
)

// RegistryBinary is the CNCF distribution registry shipped by Debian's
// docker-registry package.
const RegistryBinary = "docker-registry"

// RegistryOptions configures StartRegistry.
type RegistryOptions struct {
	// Auth serves the registry over TLS, with a certificate signed by a test
	// CA (see Registry.CAFile), and requires HTTP basic auth with a random
	// user name and password (Registry.Username, Registry.Password).
	Auth bool
}

// Registry is a running distribution registry on a loopback port.
type Registry struct {
	// Host is "127.0.0.1:PORT", the registry part of image references.
	Host string
	// CAFile is the PEM file of the CA that signed the registry's TLS
	// certificate (hand it to kiln as --registry-ca). It is readable by
	// every user. Empty without TLS.
	CAFile string
	// Username and Password are the basic-auth credentials. Empty without
	// auth.
	Username, Password string
	// Dir is the registry's storage root directory.
	Dir string

	log *syncBuffer
	cmd *exec.Cmd
	tls *tls.Config
}

// StartRegistry starts a registry with filesystem storage in a temporary
// directory and deletes enabled, waits until /v2/ answers and stops it when
// the test ends. On test failure the registry log is logged.
func StartRegistry(t testing.TB, opts RegistryOptions) *Registry {
	t.Helper()
	Require(t, RegistryBinary)
	bin, _ := exec.LookPath(RegistryBinary)

	dir := t.TempDir()
	r := &Registry{Dir: filepath.Join(dir, "storage"), log: &syncBuffer{}}
	var tlsConf, authConf string
	if opts.Auth {
		pub := PublicDir(t)
		ca, err := newTestCA()
		if err != nil {
			t.Fatalf("creating test CA: %v", err)
		}
		r.CAFile = filepath.Join(pub, "ca.crt")
		certFile := filepath.Join(dir, "server.pem")
		keyFile := filepath.Join(dir, "server-key.pem")
		if err := os.WriteFile(r.CAFile, ca.certPEM, 0o644); err != nil {
			t.Fatal(err)
		}
		certPEM, keyPEM, err := ca.issue([]net.IP{net.IPv4(127, 0, 0, 1)}, []string{"localhost"})
		if err != nil {
			t.Fatalf("issuing registry certificate: %v", err)
		}
		if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		r.tls = &tls.Config{RootCAs: ca.pool()}

		r.Username = "user-" + randomHex(4)
		r.Password = randomHex(16)
		hash, err := bcrypt.GenerateFromPassword([]byte(r.Password), bcrypt.MinCost)
		if err != nil {
			t.Fatalf("hashing registry password: %v", err)
		}
		htpasswd := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(htpasswd, []byte(r.Username+":"+string(hash)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		tlsConf = fmt.Sprintf("  tls:\n    certificate: %q\n    key: %q\n", certFile, keyFile)
		authConf = fmt.Sprintf("auth:\n  htpasswd:\n    realm: kiln-test\n    path: %q\n", htpasswd)
	}

	// The registry cannot take a listening socket from us, so pick a free
	// port and retry if someone else grabs it before the registry binds it.
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		r.Host = fmt.Sprintf("127.0.0.1:%d", port)
		config := fmt.Sprintf(`version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: %q
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %q
  secret: %q
%s%s`, r.Dir, r.Host, randomHex(16), tlsConf, authConf)
		configFile := filepath.Join(dir, "config.yml")
		if err := os.WriteFile(configFile, []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
		r.log.Write([]byte(fmt.Sprintf("--- starting registry on %s (attempt %d)\n", r.Host, attempt+1)))
		cmd := exec.Command(bin, "serve", configFile)
		cmd.Stdout = r.log
		cmd.Stderr = r.log
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting %s: %v", bin, err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		if lastErr = r.waitReady(exited); lastErr == nil {
			r.cmd = cmd
			t.Cleanup(func() {
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-exited
				if t.Failed() {
					t.Logf("registry %s log:\n%s", r.Host, r.Log())
				}
			})
			return r
		}
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}
	t.Fatalf("starting registry: %v\nlog:\n%s", lastErr, r.Log())
	return nil
}

func (r *Registry) waitReady(exited <-chan error) error {
	client := &http.Client{Transport: r.Transport(), Timeout: 2 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("registry exited before answering: %v", err)
		default:
		}
		resp, err := client.Get(r.URL() + "/v2/")
		if err == nil {
			resp.Body.Close()
			// 401 is a healthy answer for the auth variant.
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("registry did not answer /v2/ within 30s")
}

// Log returns the registry's output so far (its access and error log).
func (r *Registry) Log() string { return r.log.String() }

// Scheme returns "https" for a TLS registry, "http" otherwise.
func (r *Registry) Scheme() string {
	if r.tls != nil {
		return "https"
	}
	return "http"
}

// URL returns the registry's base URL, e.g. "http://127.0.0.1:PORT".
func (r *Registry) URL() string { return r.Scheme() + "://" + r.Host }

// TLS reports whether the registry serves TLS.
func (r *Registry) TLS() bool { return r.tls != nil }

// Transport returns an http.RoundTripper that trusts the registry's CA.
func (r *Registry) Transport() http.RoundTripper {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if r.tls != nil {
		tr.TLSClientConfig = r.tls.Clone()
	}
	return tr
}

// Authenticator returns the registry's credentials for go-containerregistry
// (authn.Anonymous without auth).
func (r *Registry) Authenticator() authn.Authenticator {
	if r.Username == "" {
		return authn.Anonymous
	}
	return &authn.Basic{Username: r.Username, Password: r.Password}
}

// RemoteOptions returns go-containerregistry remote options to talk to the
// registry: its credentials, a transport trusting its CA, and ctx.
func (r *Registry) RemoteOptions(ctx context.Context) []remote.Option {
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuth(r.Authenticator()),
		remote.WithTransport(r.Transport()),
	}
}

// NameOptions returns name.Option values to parse references to this
// registry; for a plain-HTTP registry it allows insecure (http) access.
// Use as name.ParseReference(ref, r.NameOptions()...).
func (r *Registry) NameOptions() []name.Option {
	if r.tls == nil {
		return []name.Option{name.Insecure}
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free loopback port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux.
	}
	return hex.EncodeToString(b)
}

// testCA is a throwaway certificate authority.
type testCA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
}

func newTestCA() (*testCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kiln testenv CA " + randomHex(4)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &testCA{cert: cert, key: key, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// issue returns a PEM server certificate and key for the given addresses.
func (ca *testCA) issue(ips []net.IP, dnsNames []string) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: strings.Join(dnsNames, ",")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  ips,
		DNSNames:     dnsNames,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), nil
}
