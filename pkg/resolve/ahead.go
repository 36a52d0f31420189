package resolve

import (
	"context"

	"github.com/kiln-build/kiln/pkg/resolve/aptrepo"
)

// DebAhead fetches and parses the apt indices a DebRequest will need
// before the parent's files have all been read: the spec's apt_sources at
// once, and each of the parent's sources as soon as its sources file has
// streamed by (see Seen). ResolveDebs, given it as DebRequest.Ahead,
// verifies everything as usual and uses only what matches what it
// verified (see aptrepo.Ahead).
type DebAhead struct {
	a    *aptrepo.Ahead
	spec []aptrepo.Source
}

// StartDebAhead starts on the indices of req's Sources with req's
// Fetcher, Arch and XZ; req.Parent is not read. An entry that does not
// parse is skipped: ResolveDebs reports it. Call Close when done.
func StartDebAhead(ctx context.Context, req DebRequest) *DebAhead {
	d := &DebAhead{a: aptrepo.NewAhead(ctx, req.Fetcher, req.Arch, aptrepo.IndexOptions{XZ: req.XZ})}
	for i, entry := range req.Sources {
		if s, err := parseSpecSource(i, entry); err == nil {
			d.spec = append(d.spec, s...)
		}
	}
	for _, src := range d.spec {
		d.a.Start(src)
	}
	return d
}

// Seen is told about a parent file as the parent's layers stream by (it
// is a rootfs.Seen): for the parent's apt sources files
// (etc/apt/sources.list, etc/apt/sources.list.d/*.list and *.sources) it
// starts on the sources they name that the spec's do not replace. A later
// layer may still change those files; ResolveDebs reads the final ones.
func (d *DebAhead) Seen(name string, data []byte) {
	srcs, ok, err := parentSourcesFile(name, data)
	if !ok || err != nil {
		return
	}
	for _, src := range srcs {
		if !replaced(src, d.spec) {
			d.a.Start(src)
		}
	}
}

// Close stops the work under way and waits for it to end.
func (d *DebAhead) Close() { d.a.Close() }
