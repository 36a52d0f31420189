package layer

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// TestDebsFetch checks how WriteTar meets a Fetch that fails: a package's
// download error is the layer's error, a Fetch that returns without
// getting every package is an error too, not a wait for ever, and a Fetch
// still downloading when WriteTar fails is canceled.
func TestDebsFetch(t *testing.T) {
	pkgs := []DebFile{{Name: "a", Version: "1", Architecture: "all"}, {Name: "b", Version: "2", Architecture: "all"}}
	canceled := make(chan struct{})
	tests := []struct {
		name  string
		fetch func(ctx context.Context, got func(int, string, error)) error
		want  string
	}{
		{
			name: "a download fails",
			fetch: func(_ context.Context, got func(int, string, error)) error {
				got(0, "", errors.New("GET a.deb: 503"))
				return errors.New("GET a.deb: 503")
			},
			want: "GET a.deb: 503",
		},
		{
			name: "the first package's download is canceled because the second's failed",
			fetch: func(_ context.Context, got func(int, string, error)) error {
				got(1, "", errors.New("GET b.deb: 404 Not Found"))
				got(0, "", context.Canceled)
				return errors.New("GET b.deb: 404 Not Found")
			},
			want: "GET b.deb: 404 Not Found",
		},
		{
			name: "Fetch forgets a package",
			fetch: func(_ context.Context, got func(int, string, error)) error {
				got(1, "/nowhere/b.deb", nil)
				return nil
			},
			want: "not downloaded",
		},
		{
			name: "the first package is no .deb; the second is still downloading",
			fetch: func(ctx context.Context, got func(int, string, error)) error {
				got(0, "/dev/null", nil)
				<-ctx.Done()
				close(canceled)
				return ctx.Err()
			},
			want: "a_1_all.deb",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &Debs{Packages: pkgs, Epoch: time.Unix(0, 0), Fetch: tt.fetch}
			err := l.WriteTar(context.Background(), tar.NewWriter(io.Discard))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("WriteTar: %v, want an error with %q", err, tt.want)
			}
		})
	}
	select {
	case <-canceled:
	default:
		t.Error("the download under way was not canceled when WriteTar returned")
	}
}
