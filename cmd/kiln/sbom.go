package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/kiln-build/kiln/pkg/build"
	"github.com/kiln-build/kiln/pkg/sbom"
)

// cmdSBOM prints the SBOM attached to the image the spec names (kiln sbom):
// exit 0 with the SBOM on stdout; 1 when the image or its SBOM is absent
// or the registry cannot be asked; 2 on a usage or spec error.
func cmdSBOM(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommon("sbom", stderr)
	format := c.fs.String("sbom-format", "spdx", "SBOM format: spdx (SPDX 2.3 JSON) or cyclonedx (CycloneDX 1.5 JSON)")
	imagePlatform := c.fs.String("image-platform", "", "for a spec of several platforms, the platform whose image's SBOM to print (default the spec's first)")
	s, a, err := c.load(ctx, args)
	if err != nil {
		return err
	}
	f, err := sbom.ParseFormat(*format)
	if err != nil {
		return usageError{fmt.Errorf("--sbom-format: %w", err)}
	}
	if !s.HasRegistry() {
		return usageError{errors.New("the spec names no registry, so there is no pushed image to read the SBOM of; set registry or image")}
	}
	p, err := c.plan(ctx, s, a)
	if err != nil {
		return err
	}
	b, err := build.FetchSBOM(ctx, p, a, f, *imagePlatform)
	if err != nil {
		return err
	}
	_, err = stdout.Write(b)
	return err
}
