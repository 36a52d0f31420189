package push

import (
	"context"
	"fmt"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kiln-build/kiln/pkg/auth"
)

// Registry publishes to the registry the tag names. ggcr's remote.Write
// checks each blob with HEAD before uploading it, mounts blobs across
// repositories of the same registry, uploads blobs concurrently and puts the
// manifest only after every blob is in place.
//
// A push that fails on a temporary error (see auth.Temporary) is started
// again after a backoff: blobs already in the registry are found by their
// HEAD and skipped, so each attempt resumes where the last one left off, at
// blob granularity. It gives up once the policy's Timeout has passed since
// the first attempt, naming the registry and the last failure.
type Registry struct {
	opts   []remote.Option
	policy auth.RetryPolicy
}

// NewRegistry returns a registry publisher using opts (auth, transport) and
// the default retry policy.
func NewRegistry(opts ...remote.Option) *Registry {
	return &Registry{opts: opts}
}

// WithRetry sets the retry policy (timeout, log) and returns r.
func (r *Registry) WithRetry(p auth.RetryPolicy) *Registry {
	r.policy = p
	return r
}

// Publish implements Interface.
func (r *Registry) Publish(ctx context.Context, img v1.Image, tag name.Tag) (name.Digest, error) {
	d, err := img.Digest()
	if err != nil {
		return name.Digest{}, fmt.Errorf("push %s: %w", tag, err)
	}
	opts := append([]remote.Option{remote.WithContext(ctx)}, r.opts...)
	start := time.Now()
	deadline := r.policy.Deadline(start)
	for attempt := 1; ; attempt++ {
		err := remote.Write(tag, img, opts...)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return name.Digest{}, fmt.Errorf("push %s: %w", tag, ctx.Err())
		}
		if !auth.Temporary(err) {
			return name.Digest{}, fmt.Errorf("push %s: %w", tag, err)
		}
		wait := r.policy.Backoff(attempt)
		if time.Now().Add(wait).After(deadline) {
			return name.Digest{}, fmt.Errorf("push %s: %w", tag, &auth.GiveUpError{
				Registry: tag.RegistryStr(), Attempts: attempt, Elapsed: time.Since(start), Last: err,
			})
		}
		r.policy.Logf("push %s: %v; starting again in %s (blobs already pushed are kept)", tag, err, wait.Round(10*time.Millisecond))
		if err := auth.Sleep(ctx, wait); err != nil {
			return name.Digest{}, fmt.Errorf("push %s: %w", tag, err)
		}
	}
	return tag.Context().Digest(d.String()), nil
}
