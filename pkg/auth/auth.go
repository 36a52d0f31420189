// Package auth gives kiln's registry clients their credentials and
// transport: the Docker config file and its credential helpers (or a
// registry_config file named by the spec), extra trusted CAs and --insecure.
package auth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Options configure registry access.
type Options struct {
	// RegistryConfig is a Docker config JSON file; when empty the default
	// keychain (DOCKER_CONFIG, ~/.docker/config.json, podman's auth.json,
	// credential helpers) is used.
	RegistryConfig string
	// Insecure allows plain HTTP and skips TLS verification.
	Insecure bool
	// CAFiles are extra PEM CA bundles to trust.
	CAFiles []string
	// Retry is how flaky registries are retried.
	Retry RetryPolicy
	// HelperTimeout bounds each run of a Docker credential helper; zero
	// means DefaultHelperTimeout.
	HelperTimeout time.Duration
	// Fetch bounds the requests to package indexes and apt repositories
	// (see FetchTransport).
	Fetch FetchTimeouts
}

// Keychain returns the keychain for o: RegistryConfig when set, else the
// file authn.DefaultKeychain would read (the Docker config, then podman's
// auth.json). Credential helpers are run by kiln under HelperTimeout and
// the request's context, and a helper that fails or prints something other
// than credentials is named in the error, never its output.
func (o Options) Keychain() (authn.Keychain, error) {
	if o.RegistryConfig == "" {
		cf, err := defaultConfig()
		if err != nil {
			return nil, err
		}
		return &helperKeychain{cf: cf, timeout: o.HelperTimeout}, nil
	}
	cf, err := loadConfigFile(o.RegistryConfig, "registry_config")
	if err != nil {
		return nil, err
	}
	return &helperKeychain{cf: cf, timeout: o.HelperTimeout}, nil
}

// Transport returns the HTTP transport for o: TLS verified against the
// system roots plus CAFiles (unless Insecure), plain HTTP refused for
// registries off the loopback interface (unless Insecure), stalled requests
// abandoned, Retry-After honoured and replayable requests retried per
// o.Retry.
func (o Options) Transport() (http.RoundTripper, error) {
	t, err := o.httpTransport()
	if err != nil {
		return nil, err
	}
	return newRegistryTransport(t, o.Retry, o.Insecure), nil
}

func (o Options) httpTransport() (*http.Transport, error) {
	t := remote.DefaultTransport.(*http.Transport).Clone()
	if o.Insecure {
		t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the user asked for --insecure
		return t, nil
	}
	if len(o.CAFiles) == 0 {
		return t, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	for _, f := range o.CAFiles {
		pem, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read CA bundle: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("read CA bundle %s: no PEM certificates in it", f)
		}
	}
	t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return t, nil
}

// NameOptions returns the reference-parsing options for o.
func (o Options) NameOptions() []name.Option {
	if o.Insecure {
		return []name.Option{name.Insecure}
	}
	return nil
}

// RemoteOptions returns remote options carrying o's keychain and transport
// (see Transport). go-containerregistry's own per-request retry is left to
// that transport; its retry of whole blob uploads (HEAD, POST, PATCH, PUT
// again, as a PATCH cannot be replayed) is kept short, on the errors
// Temporary accepts: push.Registry retries longer, within o.Retry's bound.
func (o Options) RemoteOptions(ctx context.Context) ([]remote.Option, error) {
	kc, err := o.Keychain()
	if err != nil {
		return nil, err
	}
	t, err := o.Transport()
	if err != nil {
		return nil, err
	}
	return o.remoteOptions(ctx, kc, t), nil
}

// RemoteOptionsFor is RemoteOptions over the transport t (one from
// Transport, or a wrapper of it), so that a caller that needs the
// transport itself (to count uploads) still makes one registry client for
// a whole build: one transport, one retry policy, one Retry-After memory.
func (o Options) RemoteOptionsFor(ctx context.Context, t http.RoundTripper) ([]remote.Option, error) {
	kc, err := o.Keychain()
	if err != nil {
		return nil, err
	}
	return o.remoteOptions(ctx, kc, t), nil
}

func (o Options) remoteOptions(ctx context.Context, kc authn.Keychain, t http.RoundTripper) []remote.Option {
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(kc),
		remote.WithTransport(t),
		remote.WithRetryStatusCodes(),
		remote.WithRetryPredicate(func(err error) bool { return ctx.Err() == nil && Temporary(err) }),
		remote.WithRetryBackoff(remote.Backoff{Duration: 250 * time.Millisecond, Factor: 2, Jitter: 1, Steps: 4}),
	}
}
