package build

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"

	"golang.org/x/sync/errgroup"

	"github.com/kiln-build/kiln/pkg/auth"
)

// fetched counts what fetchParallel found in the cache and downloaded.
type fetched struct {
	cached, downloaded int
	bytes              int64
}

func (f fetched) String() string {
	return fmt.Sprintf("%d downloaded (%s), %d from the local cache", f.downloaded, HumanBytes(f.bytes), f.cached)
}

// fetchParallel runs fetch for 0..n-1, at most 8 at once; fetch returns
// whether its file was already in the cache and the file's path.
func fetchParallel(ctx context.Context, n int, fetch func(ctx context.Context, i int) (hit bool, path string, err error)) (fetched, error) {
	hits := make([]bool, n)
	paths := make([]string, n)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i := range n {
		g.Go(func() error {
			var err error
			hits[i], paths[i], err = fetch(gctx, i)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return fetched{}, err
	}
	var f fetched
	for i, h := range hits {
		if h {
			f.cached++
			continue
		}
		f.downloaded++
		if fi, err := os.Stat(paths[i]); err == nil {
			f.bytes += fi.Size()
		}
	}
	return f, nil
}

// HumanBytes formats a byte count for people: "3.7 MiB".
func HumanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// fetchClient is the client for index and apt requests: o.HTTPTransport
// (bounded by newSession) with redirects from https to http refused.
func fetchClient(o Options) *http.Client {
	return &http.Client{Transport: o.HTTPTransport, CheckRedirect: auth.CheckRedirect}
}

func httpGet(ctx context.Context, client *http.Client, url string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", "kiln")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s", auth.RedactURL(url), resp.Status)
	}
	return resp.Body, nil
}
