package main

import (
	"context"
	"errors"
	"io"

	"github.com/kiln-build/kiln/pkg/build"
)

// cmdBundle writes the bundle of the spec's kiln.lock (kiln bundle -o DIR):
// the parent with all its layers, every pinned .deb and wheel and the lock,
// for a --locked --from-bundle build across an air gap.
func cmdBundle(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommon("bundle", stderr)
	out := c.fs.StringP("output", "o", "", "directory to write the bundle to (an OCI image layout; must not exist)")
	quiet := c.fs.BoolP("quiet", "q", false, "print nothing on stderr but errors")
	c.locked = true // a bundle carries what the lock pins
	s, a, err := c.load(ctx, args)
	if err != nil {
		return err
	}
	if *out == "" {
		return usageError{errors.New("name the bundle's directory with -o DIR")}
	}
	p, err := c.plan(ctx, s, a)
	if err != nil {
		return err
	}
	var log io.Writer = stderr
	if *quiet {
		log = nil
	}
	store, held, err := c.sharedCache(log)
	if err != nil {
		return err
	}
	defer held.Release()
	return build.WriteBundle(ctx, p, build.Options{Auth: a, Cache: store, Log: log}, *out)
}
