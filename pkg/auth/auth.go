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
	"net/url"
	"os"
	"time"

	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/configfile"
	"github.com/docker/cli/cli/config/types"
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
}

// Keychain returns the keychain for o.
func (o Options) Keychain() (authn.Keychain, error) {
	if o.RegistryConfig == "" {
		return authn.DefaultKeychain, nil
	}
	f, err := os.Open(o.RegistryConfig)
	if err != nil {
		return nil, fmt.Errorf("read registry_config: %w", err)
	}
	defer f.Close()
	cf, err := config.LoadFromReader(f)
	if err != nil {
		return nil, fmt.Errorf("read registry_config %s: %w (it must be a Docker config.json)", o.RegistryConfig, err)
	}
	return &fileKeychain{cf: cf}, nil
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
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(kc),
		remote.WithTransport(t),
		remote.WithRetryStatusCodes(),
		remote.WithRetryPredicate(func(err error) bool { return ctx.Err() == nil && Temporary(err) }),
		remote.WithRetryBackoff(remote.Backoff{Duration: 250 * time.Millisecond, Factor: 2, Jitter: 1, Steps: 4}),
	}, nil
}

// fileKeychain resolves credentials from one Docker config file, including
// its credential helpers, the way authn.DefaultKeychain does for the
// default file.
type fileKeychain struct {
	cf *configfile.ConfigFile
}

func (k *fileKeychain) Resolve(target authn.Resource) (authn.Authenticator, error) {
	var cfg, empty types.AuthConfig
	for _, key := range []string{target.String(), target.RegistryStr()} {
		if key == name.DefaultRegistry {
			key = authn.DefaultAuthKey
		}
		var err error
		cfg, err = k.cf.GetAuthConfig(key)
		if err != nil {
			return nil, fmt.Errorf("credentials for %s: %w", target.RegistryStr(), err)
		}
		cfg.ServerAddress = ""
		if cfg != empty {
			break
		}
	}
	if cfg == empty {
		return authn.Anonymous, nil
	}
	return authn.FromConfig(authn.AuthConfig{
		Username:      cfg.Username,
		Password:      cfg.Password,
		Auth:          cfg.Auth,
		IdentityToken: cfg.IdentityToken,
		RegistryToken: cfg.RegistryToken,
	}), nil
}

// RedactURL returns u with any password replaced by "***", for logs and
// errors: credentials in index or mirror URLs never reach either.
func RedactURL(u string) string {
	parsed, err := url.Parse(u)
	if err != nil || parsed.User == nil {
		return u
	}
	if _, ok := parsed.User.Password(); ok {
		parsed.User = url.UserPassword(parsed.User.Username(), "***")
	} else {
		parsed.User = url.User("***")
	}
	return parsed.String()
}
