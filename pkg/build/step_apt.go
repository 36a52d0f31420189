package build

import (
	"context"
	"fmt"

	"github.com/kiln-build/kiln/pkg/cache"
	"github.com/kiln-build/kiln/pkg/layer"
	"github.com/kiln-build/kiln/pkg/layer/deblayer"
	"github.com/kiln-build/kiln/pkg/sandbox"
	"github.com/kiln-build/kiln/pkg/spec"
)

// aptStep installs the Debian packages.
type aptStep struct{}

func (aptStep) name() string { return StepApt }

func (aptStep) inputs(_ context.Context, b *session) (map[string]string, bool, error) {
	if !wantsDebs(b.p) {
		return nil, false, nil
	}
	s := b.p.Spec
	in := b.baseInputs()
	in["apt_packages"] = listValue(s.AptPackages)
	in["apt_sources"] = hashValue(listValue(s.AptSources))
	in["apt_install_recommends"] = fmt.Sprint(s.AptInstallRecommends)
	if b.p.Lock != nil {
		in["lock"] = jsonHash(b.p.Lock.Debs)
	}
	mode, fallback, err := b.aptScripts()
	if err != nil {
		return nil, false, err
	}
	if fallback != "" && !b.aptFallbackSaid {
		b.aptFallbackSaid = true
		b.o.logf("apt: warning: maintainer scripts are emulated, not run: %s (apt_scripts: emulate says so and silences this)", fallback)
	}
	if mode == spec.AptScriptsRun {
		// What an emulating build's key holds stays as it was.
		in["apt_scripts"] = mode
		in["configure"] = aptConfigureVersion + " " + sandbox.FormatVersion
	}
	return in, true, nil
}

func (aptStep) pin(ctx context.Context, b *session) (*cache.Pins, error) {
	if err := b.pinDebs(ctx); err != nil {
		return nil, err
	}
	return &cache.Pins{Debs: b.in.debs}, nil
}

func (aptStep) layers(ctx context.Context, b *session) ([]layer.Source, error) {
	fs, err := b.parentFS(ctx)
	if err != nil {
		return nil, err
	}
	dl, err := debLayer(ctx, b.o, b.parent, fs, b.in.debs, b.p)
	if err != nil {
		return nil, err
	}
	mode, _, err := b.aptScripts()
	if err != nil {
		return nil, err
	}
	if mode != spec.AptScriptsRun {
		return []layer.Source{dl}, nil
	}
	plat, err := b.p.targetPlatform()
	if err != nil {
		return nil, err
	}
	dl.Unpacked = true
	parentLayers, err := b.o.Cache.Image(ctx, b.parent.Image).Layers()
	if err != nil {
		return nil, fmt.Errorf("apt: list the parent's layers: %w", err)
	}
	return []layer.Source{dl, &aptConfigureLayer{
		debs:   dl,
		parent: parentLayers,
		plat:   *plat,
		epoch:  b.p.Epoch,
		cache:  b.o.Cache,
		log:    b.o.Log,
	}}, nil
}

func (aptStep) resolution(p *Plan) (map[string]string, error) {
	s := p.Spec
	if len(s.AptPackages) == 0 {
		return nil, nil
	}
	return map[string]string{
		"platform":               s.Platform,
		"base_image":             s.BaseImage,
		"apt_packages":           listValue(s.AptPackages),
		"apt_sources":            hashValue(listValue(s.AptSources)),
		"apt_install_recommends": fmt.Sprint(s.AptInstallRecommends),
	}, nil
}

func (aptStep) config() *cache.ConfigDelta { return nil }

func (aptStep) warnings(srcs []layer.Source) []string {
	var out []string
	for _, src := range srcs {
		if cl, ok := src.(*aptConfigureLayer); ok {
			out = append(out, cl.warnings()...)
			continue
		}
		dl, ok := src.(*layer.Debs)
		if !ok {
			continue
		}
		for _, w := range dl.Report.Warnings {
			out = append(out, fmt.Sprintf("apt: warning: %s", w))
		}
		out = append(out, groupedWarnings(dl.Report.Packages)...)
	}
	return out
}

// groupedWarnings gives one warning line per package: its warning, or for
// a package with several the count and the first, each then on a line
// only --explain prints (explainPrefix), so that a postinst kiln cannot
// follow does not flood the output.
func groupedWarnings(pkgs []deblayer.PackageReport) []string {
	var out []string
	for _, pr := range pkgs {
		switch n := len(pr.Warnings); {
		case n == 1:
			out = append(out, fmt.Sprintf("apt: warning: %s: %s", pr.Name, pr.Warnings[0]))
		case n > 1:
			out = append(out, fmt.Sprintf("apt: warning: %s: %d warnings (kiln build --explain lists them), the first: %s", pr.Name, n, pr.Warnings[0]))
			for _, w := range pr.Warnings {
				out = append(out, fmt.Sprintf("%s  apt: %s: %s", explainPrefix, pr.Name, w))
			}
		}
	}
	return out
}
