package auth

import (
	"fmt"
	"net"
	"net/http"
	"time"
)

// Defaults of FetchTimeouts.
const (
	// DefaultConnectTimeout bounds connecting (TCP and TLS) to an index or
	// apt repository.
	DefaultConnectTimeout = 30 * time.Second
	// DefaultResponseTimeout bounds the wait for an index's or apt
	// repository's response headers once the request is sent.
	DefaultResponseTimeout = 60 * time.Second
)

// FetchTimeouts bound each request kiln makes to a package index or an apt
// repository, so that a server that accepts a connection and never
// answers, or stops sending in the middle of a file, fails the build
// (naming the URL) instead of hanging it.
type FetchTimeouts struct {
	// Connect bounds establishing the connection, TCP and TLS; zero means
	// DefaultConnectTimeout.
	Connect time.Duration
	// ResponseHeader bounds the wait for the response headers after the
	// request is sent; zero means DefaultResponseTimeout.
	ResponseHeader time.Duration
	// Stall abandons a response whose body delivers no bytes for this
	// long; zero means DefaultStallTimeout.
	Stall time.Duration
}

func (t FetchTimeouts) connect() time.Duration { return positiveOr(t.Connect, DefaultConnectTimeout) }

func (t FetchTimeouts) responseHeader() time.Duration {
	return positiveOr(t.ResponseHeader, DefaultResponseTimeout)
}

func (t FetchTimeouts) stall() time.Duration { return positiveOr(t.Stall, DefaultStallTimeout) }

// FetchTransport returns inner (nil: http.DefaultTransport) bounded by t:
// an *http.Transport is cloned with t's connect, TLS handshake and
// response header timeouts, and every request runs under the stall
// watchdog of the registry transport (no response within Connect plus
// ResponseHeader, or no body bytes for Stall, abandons it with a
// *StallError). Nothing is retried.
func FetchTransport(inner http.RoundTripper, t FetchTimeouts) http.RoundTripper {
	if inner == nil {
		inner = http.DefaultTransport
	}
	if ht, ok := inner.(*http.Transport); ok {
		c := ht.Clone()
		d := &net.Dialer{Timeout: t.connect(), KeepAlive: 30 * time.Second}
		c.DialContext = d.DialContext
		c.TLSHandshakeTimeout = t.connect()
		c.ResponseHeaderTimeout = t.responseHeader()
		inner = c
	}
	return &fetchTransport{inner: inner, wait: t.connect() + t.responseHeader(), stall: t.stall()}
}

// RetryingFetchTransport is FetchTransport with the registry transport's
// retry policy p for idempotent requests (GET, HEAD): a reset or refused
// connection, a request abandoned by the stall watchdog before its
// response, or a 408, 429 or 5xx answer is tried again (at most 3 times in
// all, within p.Timeout) after p's backoff or the server's Retry-After,
// which also delays later requests to that host. The last failure is
// returned as it was. A response body that stalls is the caller's to
// retry: its bytes are already the caller's.
func RetryingFetchTransport(inner http.RoundTripper, t FetchTimeouts, p RetryPolicy) http.RoundTripper {
	f := FetchTransport(inner, t).(*fetchTransport)
	rt := newRegistryTransport(f.inner, p, false)
	rt.fetch, rt.wait, rt.stall = true, f.wait, f.stall
	return rt
}

type fetchTransport struct {
	inner       http.RoundTripper
	wait, stall time.Duration
}

func (f *fetchTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return watched(f.inner, req, f.wait, f.stall)
}

// DowngradeError is returned for a redirect from https to plain http,
// which kiln refuses as apt and browsers do: what a TLS-protected server
// answered must not be replaced by what anyone on the path can forge.
type DowngradeError struct {
	// From and To are the redirecting and the redirected URLs, without
	// credentials.
	From, To string
}

func (e *DowngradeError) Error() string {
	return fmt.Sprintf("refusing the redirect from %s to plain-HTTP %s: the server must redirect to https", e.From, e.To)
}

// maxRedirects is how many redirects a fetch follows, as net/http does.
const maxRedirects = 10

// CheckRedirect is the http.Client CheckRedirect of index and apt fetches:
// at most 10 redirects, and none from https to http (a *DowngradeError).
func CheckRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return fmt.Errorf("stopped after %d redirects", maxRedirects)
	}
	if len(via) > 0 && req.URL.Scheme != "https" {
		for _, v := range via {
			if v.URL.Scheme == "https" {
				return &DowngradeError{From: v.URL.Redacted(), To: req.URL.Redacted()}
			}
		}
	}
	return nil
}

// FetchClient returns the client for index and apt fetches: FetchTransport
// of inner and t, with CheckRedirect.
func FetchClient(inner http.RoundTripper, t FetchTimeouts) *http.Client {
	return &http.Client{Transport: FetchTransport(inner, t), CheckRedirect: CheckRedirect}
}
