package auth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Defaults of the retry policy.
const (
	// DefaultTimeout bounds how long kiln keeps retrying a failing registry
	// operation before it gives up.
	DefaultTimeout = 5 * time.Minute
	// DefaultStallTimeout abandons a registry request that transfers
	// nothing for this long.
	DefaultStallTimeout = 60 * time.Second
	// MaxRetryAfter caps how long a Retry-After header makes kiln wait.
	MaxRetryAfter = 60 * time.Second

	firstBackoff = 500 * time.Millisecond
	maxBackoff   = 15 * time.Second

	// maxRefusedAttempts bounds retries of a refused connection: a
	// registry that restarts is back within seconds, while a mistyped
	// host or port should fail fast rather than after Timeout.
	maxRefusedAttempts = 4
	// maxFetchAttempts bounds the tries of one index or apt request.
	maxFetchAttempts = 3
)

// RetryPolicy is how kiln retries a flaky registry: exponential backoff with
// jitter, Retry-After honoured (capped at MaxRetryAfter), stalled transfers
// abandoned after StallTimeout and retried, and no retry begun once an
// operation has been failing for Timeout.
type RetryPolicy struct {
	// Timeout bounds the time spent retrying one operation (a request, or
	// a whole push); zero means DefaultTimeout.
	Timeout time.Duration
	// StallTimeout abandons a request that makes no progress (no response
	// headers, no body bytes sent or received) for this long; zero means
	// DefaultStallTimeout.
	StallTimeout time.Duration
	// FirstBackoff is the wait before the first retry, doubled for each
	// later one up to 15s; zero means 500ms.
	FirstBackoff time.Duration
	// Log receives one line per retry; nil discards them.
	Log io.Writer
}

// positiveOr returns d, or def when d is zero or negative: the rule for
// every duration setting here ("zero means the default").
func positiveOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func (p RetryPolicy) timeout() time.Duration { return positiveOr(p.Timeout, DefaultTimeout) }

func (p RetryPolicy) stallTimeout() time.Duration {
	return positiveOr(p.StallTimeout, DefaultStallTimeout)
}

// Backoff returns the wait before retry number attempt (1-based):
// exponential from FirstBackoff (500ms), capped at 15s, with jitter (a
// random value between half and all of it), so that parallel clients do not
// retry in lockstep.
func (p RetryPolicy) Backoff(attempt int) time.Duration {
	d := positiveOr(p.FirstBackoff, firstBackoff)
	for i := 1; i < attempt && d < maxBackoff; i++ {
		d *= 2
	}
	d = min(d, maxBackoff)
	return d/2 + rand.N(d/2+1)
}

// Deadline returns when an operation that started at start must stop
// retrying.
func (p RetryPolicy) Deadline(start time.Time) time.Time {
	return start.Add(p.timeout())
}

// Logf writes one line to the policy's log, if any.
func (p RetryPolicy) Logf(format string, args ...any) {
	if p.Log != nil {
		fmt.Fprintf(p.Log, format+"\n", args...)
	}
}

// Sleep waits for d or until ctx is done, returning ctx's error then.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// StallError is returned for a request abandoned because it made no
// progress for the stall timeout. It is temporary: the request (or the
// upload it belongs to) is retried.
type StallError struct {
	Timeout time.Duration
}

func (e *StallError) Error() string {
	return fmt.Sprintf("no progress for %s: transfer stalled and abandoned", e.Timeout)
}

// Temporary reports true: a stalled request is retried.
func (e *StallError) Temporary() bool { return true }

// GiveUpError is returned when kiln stops retrying a registry: it names the
// registry, how long and how often kiln tried, and the last failure.
type GiveUpError struct {
	// Registry is the host (and port) that kept failing.
	Registry string
	// Attempts is how many times the operation was tried.
	Attempts int
	// Elapsed is the time from the first attempt to giving up.
	Elapsed time.Duration
	// Last describes the last failure.
	Last error
}

func (e *GiveUpError) Error() string {
	return fmt.Sprintf("registry %s: giving up after %d attempts in %s; last failure: %v",
		e.Registry, e.Attempts, e.Elapsed.Round(100*time.Millisecond), e.Last)
}

func (e *GiveUpError) Unwrap() error { return e.Last }

// PlainHTTPError is returned for a plain-HTTP request to a registry that is
// not on the loopback interface when --insecure was not given.
type PlainHTTPError struct {
	Host string
}

func (e *PlainHTTPError) Error() string {
	return fmt.Sprintf("refusing plain HTTP to %s: credentials and images would travel unencrypted; serve the registry over HTTPS (trust its CA with --registry-ca) or pass --insecure", e.Host)
}

// statusError is a retryable HTTP status seen by the transport.
type statusError struct {
	code       int
	retryAfter time.Duration
}

func (e *statusError) Error() string {
	s := fmt.Sprintf("%d %s", e.code, http.StatusText(e.code))
	if e.retryAfter > 0 {
		s += fmt.Sprintf(" (Retry-After %s)", e.retryAfter)
	}
	return s
}

// retryStatus are the statuses worth retrying: the request timed out, the
// registry is rate limiting, or it (or a proxy in front of it) failed.
func retryStatus(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// Temporary reports whether err is worth retrying: a retryable HTTP status,
// a reset, refused or closed connection, a network timeout or a stalled
// transfer. Cancellation, TLS and certificate failures, authentication
// failures, refused plain HTTP and an exhausted retry budget are not.
func Temporary(err error) bool {
	if err == nil {
		return false
	}
	var (
		giveUp    *GiveUpError
		plain     *PlainHTTPError
		stall     *StallError
		status    *statusError
		terr      *transport.Error
		certErr   *tls.CertificateVerificationError
		unknownCA x509.UnknownAuthorityError
		hostErr   x509.HostnameError
		recErr    tls.RecordHeaderError
		netErr    net.Error
	)
	switch {
	case errors.As(err, &giveUp), errors.As(err, &plain),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	case errors.As(err, &certErr), errors.As(err, &unknownCA), errors.As(err, &hostErr), errors.As(err, &recErr):
		return false
	case errors.As(err, &stall):
		return true
	case errors.As(err, &status):
		return retryStatus(status.code)
	case errors.As(err, &terr):
		return terr.Temporary()
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNABORTED), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		return true
	case errors.As(err, &netErr) && netErr.Timeout():
		return true
	}
	return false
}

// parseRetryAfter reads a Retry-After value: delay seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		if n > int64(24*time.Hour/time.Second) {
			n = int64(24 * time.Hour / time.Second)
		}
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

// IsLoopback reports whether host (a name or address, without port) is on
// the loopback interface: localhost, 127.0.0.0/8 or ::1.
func IsLoopback(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// registryTransport is the transport under every registry client of kiln:
// it refuses plain HTTP off the loopback interface, abandons stalled
// requests, honours Retry-After for every later request to the same host,
// and retries the requests that can safely be replayed.
type registryTransport struct {
	inner    http.RoundTripper
	policy   RetryPolicy
	insecure bool
	// fetch marks the transport of index and apt requests (see
	// RetryingFetchTransport): plain HTTP is allowed, only GET and HEAD
	// are retried, at most maxFetchAttempts times, each under the fetch
	// bounds wait and stall, and the last failure is returned as it was.
	fetch       bool
	wait, stall time.Duration

	mu        sync.Mutex
	notBefore map[string]time.Time // per host, from Retry-After
}

func newRegistryTransport(inner http.RoundTripper, p RetryPolicy, insecure bool) *registryTransport {
	return &registryTransport{inner: inner, policy: p, insecure: insecure, notBefore: map[string]time.Time{}}
}

// replayable reports whether req can be sent again after a failure without
// changing what the registry ends up with. Blob upload PATCHes and the PUT
// that commits them are not: the upload session may already hold part of
// the data, so the whole upload is restarted instead (by remote.Write's
// retry and push.Registry).
func replayable(req *http.Request) bool {
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return false
	}
	switch req.Method {
	case http.MethodGet, http.MethodHead:
		return true
	case http.MethodPatch:
		return false
	case http.MethodPut:
		return !strings.Contains(req.URL.Path, "/blobs/uploads/")
	case http.MethodPost:
		// Starting an upload session (or mounting) and token requests.
		return true
	}
	return false
}

func (t *registryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !t.fetch && req.URL.Scheme == "http" && !t.insecure && !IsLoopback(req.URL.Hostname()) {
		return nil, &PlainHTTPError{Host: req.URL.Host}
	}
	ctx := req.Context()
	host := req.URL.Host
	start := time.Now()
	deadline := t.policy.Deadline(start)
	canRetry := replayable(req)
	if t.fetch {
		canRetry = (req.Method == http.MethodGet || req.Method == http.MethodHead) && (req.Body == nil || req.Body == http.NoBody)
	}
	for attempt := 1; ; attempt++ {
		if err := t.waitTurn(ctx, host); err != nil {
			return nil, err
		}
		r := req
		if attempt > 1 && req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, fmt.Errorf("replay %s %s: %w", req.Method, req.URL.Path, err)
			}
			r = req.Clone(ctx)
			r.Body = body
		}
		resp, err := t.once(r)
		var failure error
		var wait time.Duration
		switch {
		case err != nil:
			if !Temporary(err) || ctx.Err() != nil {
				return nil, err
			}
			if errors.Is(err, syscall.ECONNREFUSED) && attempt >= maxRefusedAttempts {
				return nil, &GiveUpError{Registry: host, Attempts: attempt, Elapsed: time.Since(start),
					Last: fmt.Errorf("nothing accepts connections there (check the host and port): %w", conciseError(err))}
			}
			failure = err
		case retryStatus(resp.StatusCode):
			se := &statusError{code: resp.StatusCode}
			if ra, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
				se.retryAfter = min(ra, MaxRetryAfter)
				t.delayHost(host, se.retryAfter)
				wait = se.retryAfter
			}
			failure = se
		default:
			return resp, nil
		}
		if !canRetry || (t.fetch && attempt >= maxFetchAttempts) {
			// The caller restarts the whole upload; a fetch's caller sees
			// its last failure as it was.
			return resp, err
		}
		if resp != nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		wait = max(wait, t.policy.Backoff(attempt))
		if t.fetch && time.Now().Add(wait).After(deadline) {
			return nil, failure
		}
		if time.Now().Add(wait).After(deadline) {
			return nil, &GiveUpError{Registry: host, Attempts: attempt, Elapsed: time.Since(start),
				Last: fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, conciseError(failure))}
		}
		what := "registry"
		if t.fetch {
			what = "fetch"
		}
		t.policy.Logf("%s %s: %s %s: %v; retrying in %s", what, host, req.Method, req.URL.Path, conciseError(failure), wait.Round(10*time.Millisecond))
		if err := Sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// conciseError drops the URL net/http puts in front of an error, which the
// log line already names.
func conciseError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// waitTurn waits until the host's Retry-After has passed.
func (t *registryTransport) waitTurn(ctx context.Context, host string) error {
	t.mu.Lock()
	nb := t.notBefore[host]
	t.mu.Unlock()
	return Sleep(ctx, time.Until(nb))
}

func (t *registryTransport) delayHost(host string, d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if nb := time.Now().Add(d); nb.After(t.notBefore[host]) {
		t.notBefore[host] = nb
	}
}

// once sends req under a stall watchdog: the request is cancelled when no
// request body is read, no response arrives and no response body is read
// for the stall timeout. Time spent producing the request body or consuming
// the response body does not count.
func (t *registryTransport) once(req *http.Request) (*http.Response, error) {
	if t.fetch {
		return watched(t.inner, req, t.wait, t.stall)
	}
	d := t.policy.stallTimeout()
	return watched(t.inner, req, d, d)
}

// watched sends req through inner under a stall watchdog: the request is
// cancelled when no response arrives within wait (request body reads
// re-arm it) and, once the response headers are in, when no response body
// is read for stall.
func watched(inner http.RoundTripper, req *http.Request, wait, stall time.Duration) (*http.Response, error) {
	ctx, w := newWatchdog(req.Context(), wait, stall)
	r := req.WithContext(ctx)
	if req.Body != nil && req.Body != http.NoBody {
		r.Body = &watchedRequestBody{rc: req.Body, w: w}
	}
	w.arm()
	resp, err := inner.RoundTrip(r)
	w.responded()
	if err != nil {
		w.stop(nil)
		return nil, w.explain(err)
	}
	resp.Body = &watchedResponseBody{rc: resp.Body, w: w}
	return resp, nil
}

// watchdog cancels a request's context with a StallError when it is armed
// for longer than its timeout.
type watchdog struct {
	wait   time.Duration // before the response headers
	d      time.Duration // after them
	ctx    context.Context
	cancel context.CancelCauseFunc

	mu       sync.Mutex
	timer    *time.Timer
	response bool // response headers arrived
	stopped  bool
}

func newWatchdog(parent context.Context, wait, d time.Duration) (context.Context, *watchdog) {
	ctx, cancel := context.WithCancelCause(parent)
	w := &watchdog{wait: wait, d: d, ctx: ctx, cancel: cancel}
	w.timer = time.AfterFunc(wait, func() {
		w.mu.Lock()
		timeout := w.d
		if !w.response {
			timeout = w.wait
		}
		w.mu.Unlock()
		cancel(&StallError{Timeout: timeout})
	})
	w.timer.Stop()
	return ctx, w
}

// current is the timeout in force: wait until the response, then d. The
// caller holds w.mu.
func (w *watchdog) current() time.Duration {
	if w.response {
		return w.d
	}
	return w.wait
}

func (w *watchdog) arm() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.timer.Reset(w.current())
	}
}

func (w *watchdog) disarm() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.timer.Stop()
}

// responded marks the arrival of the response headers: from now on only
// reads of the response body arm the watchdog.
func (w *watchdog) responded() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.response = true
	w.timer.Stop()
}

// stop disarms the watchdog for good and releases its context.
func (w *watchdog) stop(cause error) {
	w.mu.Lock()
	w.stopped = true
	w.timer.Stop()
	w.mu.Unlock()
	w.cancel(cause)
}

// explain replaces the cancellation error of a stalled request by the
// StallError.
func (w *watchdog) explain(err error) error {
	if err == nil {
		return nil
	}
	var stall *StallError
	if cause := context.Cause(w.ctx); errors.As(cause, &stall) && !errors.As(err, &stall) {
		return fmt.Errorf("%w (%v)", stall, err)
	}
	return err
}

type watchedRequestBody struct {
	rc io.ReadCloser
	w  *watchdog
}

// Read pauses the watchdog while the body is produced (a layer may be
// compressed on the fly) and re-arms it while the transport sends it.
func (b *watchedRequestBody) Read(p []byte) (int, error) {
	b.w.disarm()
	n, err := b.rc.Read(p)
	b.w.mu.Lock()
	if !b.w.response && !b.w.stopped {
		b.w.timer.Reset(b.w.wait)
	}
	b.w.mu.Unlock()
	return n, err
}

func (b *watchedRequestBody) Close() error { return b.rc.Close() }

type watchedResponseBody struct {
	rc io.ReadCloser
	w  *watchdog
}

// Read arms the watchdog only while waiting for the network.
func (b *watchedResponseBody) Read(p []byte) (int, error) {
	b.w.arm()
	n, err := b.rc.Read(p)
	b.w.disarm()
	if err != nil && err != io.EOF {
		err = b.w.explain(err)
	}
	return n, err
}

func (b *watchedResponseBody) Close() error {
	err := b.rc.Close()
	b.w.stop(nil)
	return err
}
