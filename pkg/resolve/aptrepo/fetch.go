package aptrepo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/kiln-build/kiln/pkg/auth"
)

// ErrNotFound is wrapped by Fetcher errors for files the server does not
// have (HTTP 404 and 410). FetchRelease and FetchPackages use it to decide
// when to fall back to another file name.
var ErrNotFound = errors.New("not found")

// errTooLarge is wrapped by fetchAll when a body exceeds its limit.
var errTooLarge = errors.New("body is too large")

// A Fetcher retrieves the file at an absolute URL. It must return an error
// wrapping ErrNotFound when the file does not exist.
type Fetcher interface {
	Fetch(ctx context.Context, url string) (io.ReadCloser, error)
}

// FetcherFunc adapts a function to the Fetcher interface.
type FetcherFunc func(ctx context.Context, url string) (io.ReadCloser, error)

// Fetch calls f(ctx, url).
func (f FetcherFunc) Fetch(ctx context.Context, url string) (io.ReadCloser, error) {
	return f(ctx, url)
}

// HTTPFetcher fetches http and https URLs with GET.
type HTTPFetcher struct {
	// Client is the client used for requests; nil means http.DefaultClient.
	Client *http.Client
	// UserAgent, when set, is sent as the User-Agent header.
	UserAgent string
}

// Fetch implements Fetcher.
func (f *HTTPFetcher) Fetch(ctx context.Context, url string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", auth.RedactURL(url), err)
	}
	if f.UserAgent != "" {
		req.Header.Set("User-Agent", f.UserAgent)
	}
	c := f.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", auth.RedactURL(url), err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s: %w", auth.RedactURL(url), resp.Status, ErrNotFound)
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: unexpected status %s", auth.RedactURL(url), resp.Status)
	}
	return resp.Body, nil
}

// fetchAll fetches url and reads at most limit bytes of it; a longer body
// is an error.
func fetchAll(ctx context.Context, f Fetcher, url string, limit int64) ([]byte, error) {
	rc, err := f.Fetch(ctx, url)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", auth.RedactURL(url), err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("GET %s: %w: want at most %d bytes", auth.RedactURL(url), errTooLarge, limit)
	}
	return data, nil
}
