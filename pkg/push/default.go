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
	opts     []remote.Option
	policy   auth.RetryPolicy
	progress chan<- v1.Update
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

// WithProgress makes Publish report its upload progress on updates (see
// remote.WithProgress: the channel is closed when the push ends, so only
// one Publish may use it); Attach reports none. It returns r.
func (r *Registry) WithProgress(updates chan<- v1.Update) *Registry {
	r.progress = updates
	return r
}

// Publish implements Interface.
func (r *Registry) Publish(ctx context.Context, img v1.Image, tag name.Tag) (name.Digest, error) {
	d, err := img.Digest()
	if err != nil {
		return name.Digest{}, fmt.Errorf("push %s: %w", tag, err)
	}
	var extra []remote.Option
	if r.progress != nil {
		extra = append(extra, remote.WithProgress(r.progress))
	}
	if err := r.write(ctx, tag, img, extra...); err != nil {
		return name.Digest{}, err
	}
	return tag.Context().Digest(d.String()), nil
}

// PublishIndex implements IndexPublisher: every platform's image, then the
// index. A blob that two images share (a platform-independent layer) is
// uploaded once.
func (r *Registry) PublishIndex(ctx context.Context, idx v1.ImageIndex, tag name.Tag) (name.Digest, error) {
	d, err := idx.Digest()
	if err != nil {
		return name.Digest{}, fmt.Errorf("push %s: %w", tag, err)
	}
	var extra []remote.Option
	if r.progress != nil {
		extra = append(extra, remote.WithProgress(r.progress))
	}
	err = r.retry(ctx, tag, func(opts []remote.Option) error {
		return remote.WriteIndex(tag, idx, opts...)
	}, extra...)
	if err != nil {
		return name.Digest{}, err
	}
	return tag.Context().Digest(d.String()), nil
}

// Attach implements Attacher: the artifact is pushed by digest to the
// subject's repository; on a registry without the referrers API (such as
// the CNCF distribution registry 2.8) the referrers tag (sha256-<digest>)
// is updated instead, as the OCI distribution spec's fallback says.
func (r *Registry) Attach(ctx context.Context, artifact v1.Image, subject name.Digest) error {
	d, err := artifact.Digest()
	if err != nil {
		return fmt.Errorf("attach to %s: %w", subject, err)
	}
	if err := r.write(ctx, subject.Context().Digest(d.String()), artifact); err != nil {
		return fmt.Errorf("attach to %s: %w", subject, err)
	}
	return nil
}

// write pushes img to ref, starting again after temporary errors.
func (r *Registry) write(ctx context.Context, tag name.Reference, img v1.Image, extra ...remote.Option) error {
	return r.retry(ctx, tag, func(opts []remote.Option) error {
		return remote.Write(tag, img, opts...)
	}, extra...)
}

// retry runs push with the registry's options (and extra) until it
// succeeds, fails for good, or the retry policy gives up.
func (r *Registry) retry(ctx context.Context, tag name.Reference, push func([]remote.Option) error, extra ...remote.Option) error {
	opts := append(append([]remote.Option{remote.WithContext(ctx)}, r.opts...), extra...)
	start := time.Now()
	deadline := r.policy.Deadline(start)
	for attempt := 1; ; attempt++ {
		err := push(opts)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("push %s: %w", tag, ctx.Err())
		}
		if !auth.Temporary(err) {
			return fmt.Errorf("push %s: %w", tag, err)
		}
		wait := r.policy.Backoff(attempt)
		if time.Now().Add(wait).After(deadline) {
			return fmt.Errorf("push %s: %w", tag, &auth.GiveUpError{
				Registry: tag.Context().RegistryStr(), Attempts: attempt, Elapsed: time.Since(start), Last: err,
			})
		}
		r.policy.Logf("push %s: %v; starting again in %s (blobs already pushed are kept)", tag, err, wait.Round(10*time.Millisecond))
		if err := auth.Sleep(ctx, wait); err != nil {
			return fmt.Errorf("push %s: %w", tag, err)
		}
	}
}
