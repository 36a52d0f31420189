package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/configfile"
	"github.com/docker/cli/cli/config/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// DefaultHelperTimeout bounds one run of a Docker credential helper
// (docker-credential-NAME get).
const DefaultHelperTimeout = 30 * time.Second

// maxHelperOutput bounds what kiln reads from a credential helper.
const maxHelperOutput = 1 << 20

// HelperError reports a Docker credential helper that failed, hung or
// printed something other than credentials. It names the helper and the
// registry and never holds the helper's output, which may contain a secret.
type HelperError struct {
	// Helper is the program, such as "docker-credential-pass".
	Helper string
	// Registry is the server address the credentials were asked for.
	Registry string
	// Problem says what went wrong, without the helper's output.
	Problem string
}

func (e *HelperError) Error() string {
	return fmt.Sprintf("credential helper %s for registry %s: %s", e.Helper, e.Registry, e.Problem)
}

// helperKeychain resolves credentials from one Docker config file the way
// authn.DefaultKeychain does, but runs credential helpers itself: under a
// timeout and the caller's context, and without ever echoing their output.
type helperKeychain struct {
	cf      *configfile.ConfigFile // nil: anonymous
	timeout time.Duration
}

// Resolve implements authn.Keychain.
func (k *helperKeychain) Resolve(target authn.Resource) (authn.Authenticator, error) {
	return k.ResolveContext(context.Background(), target)
}

// ResolveContext implements authn.ContextKeychain.
func (k *helperKeychain) ResolveContext(ctx context.Context, target authn.Resource) (authn.Authenticator, error) {
	if k.cf == nil {
		return authn.Anonymous, nil
	}
	// The same file without helpers: looking it up never runs a program.
	plain := *k.cf
	plain.CredentialsStore = ""
	plain.CredentialHelpers = nil
	var cfg, empty types.AuthConfig
	for _, key := range []string{target.String(), target.RegistryStr()} {
		if key == name.DefaultRegistry {
			key = authn.DefaultAuthKey
		}
		acKey := key
		if key == "docker.io" || key == "index.docker.io" {
			acKey = authn.DefaultAuthKey
		}
		helper := k.cf.CredentialsStore
		if h, ok := k.cf.CredentialHelpers[acKey]; ok {
			helper = h
		}
		var err error
		if helper != "" {
			cfg, err = runHelper(ctx, "docker-credential-"+helper, acKey, k.timeout)
		} else {
			cfg, err = plain.GetAuthConfig(key)
		}
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

// runHelper runs "program get" with serverURL on its standard input, as
// the Docker credential helper protocol says, and returns its credentials
// (empty when it has none for serverURL). The program is killed after
// timeout (zero: DefaultHelperTimeout) or when ctx is done.
func runHelper(ctx context.Context, program, serverURL string, timeout time.Duration) (types.AuthConfig, error) {
	if timeout <= 0 {
		timeout = DefaultHelperTimeout
	}
	herr := func(format string, args ...any) error {
		return &HelperError{Helper: program, Registry: serverURL, Problem: fmt.Sprintf(format, args...)}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, program, "get")
	cmd.Stdin = strings.NewReader(serverURL)
	var out limitedBuffer
	out.limit = maxHelperOutput
	cmd.Stdout = &out
	// A helper that forks a child keeping stdout open must not hang kiln
	// after the helper itself was killed.
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	switch {
	case errors.Is(err, exec.ErrNotFound):
		return types.AuthConfig{}, herr("%s is not on PATH; install it or remove it from the Docker config's credsStore/credHelpers", program)
	case ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		return types.AuthConfig{}, herr("no answer within %s; the helper hangs (is it waiting for a password prompt or a locked keyring?)", timeout)
	case ctx.Err() != nil:
		return types.AuthConfig{}, ctx.Err()
	case err != nil:
		if strings.Contains(out.String(), "credentials not found in native keychain") {
			return types.AuthConfig{}, nil
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return types.AuthConfig{}, herr("it failed (%s); its output is not shown, as it may hold a secret: run %q with the registry on its standard input to see it", ee.ProcessState, program+" get")
		}
		return types.AuthConfig{}, herr("running it: %v", err)
	case out.over:
		return types.AuthConfig{}, herr("it printed more than %d bytes, which are not credentials", maxHelperOutput)
	}
	var creds struct {
		ServerURL string
		Username  string
		Secret    string
	}
	dec := json.NewDecoder(bytes.NewReader(out.Bytes()))
	if err := dec.Decode(&creds); err != nil || dec.More() {
		return types.AuthConfig{}, herr("it printed something that is not the credentials JSON ({\"Username\": ..., \"Secret\": ...}) the Docker credential helper protocol requires; its output is not shown, as it may hold a secret")
	}
	if creds.Username == "<token>" {
		return types.AuthConfig{IdentityToken: creds.Secret}, nil
	}
	return types.AuthConfig{Username: creds.Username, Password: creds.Secret}, nil
}

// limitedBuffer keeps at most limit bytes and notes whether more came.
type limitedBuffer struct {
	bytes.Buffer
	limit int
	over  bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.limit - b.Len(); len(p) > room {
		b.over = true
		b.Buffer.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return b.Buffer.Write(p)
}

// defaultConfig loads the Docker config file authn.DefaultKeychain would
// use: ~/.docker/config.json or $DOCKER_CONFIG/config.json, else
// $REGISTRY_AUTH_FILE, else podman's containers/auth.json under
// $XDG_RUNTIME_DIR or $XDG_CONFIG_HOME (~/.config). It returns nil when
// there is none.
func defaultConfig() (*configfile.ConfigFile, error) {
	foundDockerConfig := false
	home, err := os.UserHomeDir()
	if err == nil {
		foundDockerConfig = fileExists(filepath.Join(home, ".docker/config.json"))
	}
	if !foundDockerConfig && os.Getenv("DOCKER_CONFIG") != "" {
		foundDockerConfig = fileExists(filepath.Join(os.Getenv("DOCKER_CONFIG"), "config.json"))
	}
	configDir := os.Getenv("XDG_CONFIG_HOME")
	if configDir == "" && home != "" {
		configDir = filepath.Join(home, ".config")
	}
	podmanAuth := filepath.Join(os.Getenv("XDG_RUNTIME_DIR"), "containers/auth.json")
	if (os.Getenv("XDG_RUNTIME_DIR") == "" || !fileExists(podmanAuth)) && configDir != "" {
		podmanAuth = filepath.Join(configDir, "containers/auth.json")
	}
	if foundDockerConfig {
		cf, err := config.Load(os.Getenv("DOCKER_CONFIG"))
		if err != nil {
			return nil, fmt.Errorf("read the Docker config: %w", err)
		}
		return cf, nil
	}
	for _, p := range []string{os.Getenv("REGISTRY_AUTH_FILE"), podmanAuth} {
		if p == "" || !fileExists(filepath.Clean(p)) {
			continue
		}
		return loadConfigFile(filepath.Clean(p), "")
	}
	return nil, nil
}

// loadConfigFile reads the Docker config file p; what names it in errors
// ("registry_config"), "" meaning its path.
func loadConfigFile(p, what string) (*configfile.ConfigFile, error) {
	f, err := os.Open(p)
	if err != nil {
		if what != "" {
			return nil, fmt.Errorf("read %s: %w", what, err)
		}
		return nil, err
	}
	defer f.Close()
	cf, err := config.LoadFromReader(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w (it must be a Docker config.json)", strings.TrimSpace(what+" "+p), err)
	}
	return cf, nil
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir()
}
