package resolve

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"

	"github.com/kiln-build/kiln/pkg/resolve/aptrepo"
)

// urlLog is a Fetcher that records the URLs asked for and has none.
type urlLog struct {
	mu   sync.Mutex
	urls []string
}

func (l *urlLog) Fetch(_ context.Context, url string) (io.ReadCloser, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.urls = append(l.urls, url)
	return nil, fmt.Errorf("GET %s: %w", url, aptrepo.ErrNotFound)
}

// TestDebAheadSeen checks which sources a DebAhead starts on: the spec's at
// once, and those the parent's sources files name that the spec's do not
// replace, and nothing for other files or files that do not parse.
func TestDebAheadSeen(t *testing.T) {
	log := &urlLog{}
	d := StartDebAhead(context.Background(), DebRequest{
		Arch:    "amd64",
		Fetcher: log,
		Sources: []string{"deb [signed-by=k.asc] http://spec.invalid/debian bookworm main", "deb"},
	})
	for _, f := range []struct{ name, data string }{
		{"etc/apt/sources.list", "deb http://list.invalid/debian bookworm main\n# deb http://commented.invalid/debian bookworm main\n"},
		{"etc/apt/sources.list.d/extra.list", "deb http://spec.invalid/debian bookworm main\n"},
		{"etc/apt/sources.list.d/debian.sources", "Types: deb\nURIs: http://deb822.invalid/debian\nSuites: bookworm bookworm-updates\nComponents: main\n"},
		{"etc/apt/sources.list.d/broken.sources", "Types: deb\n"},
		{"etc/apt/sources.list.d/notes.txt", "deb http://txt.invalid/debian bookworm main\n"},
		{"etc/apt/apt.conf.d/x.list", "deb http://conf.invalid/debian bookworm main\n"},
	} {
		d.Seen(f.name, []byte(f.data))
	}
	d.Close()
	got := slices.Clone(log.urls)
	slices.Sort(got)
	want := []string{
		"http://deb822.invalid/debian/dists/bookworm-updates/InRelease",
		"http://deb822.invalid/debian/dists/bookworm-updates/Release",
		"http://deb822.invalid/debian/dists/bookworm/InRelease",
		"http://deb822.invalid/debian/dists/bookworm/Release",
		"http://list.invalid/debian/dists/bookworm/InRelease",
		"http://list.invalid/debian/dists/bookworm/Release",
		"http://spec.invalid/debian/dists/bookworm/InRelease",
		"http://spec.invalid/debian/dists/bookworm/Release",
	}
	if !slices.Equal(got, want) {
		t.Errorf("fetched:\n%q\nwant:\n%q", got, want)
	}
}
