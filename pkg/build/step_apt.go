package build

import (
	"context"
	"fmt"

	"github.com/kiln-build/kiln/pkg/cache"
	"github.com/kiln-build/kiln/pkg/layer"
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
	return []layer.Source{dl}, nil
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
		dl, ok := src.(*layer.Debs)
		if !ok {
			continue
		}
		for _, w := range dl.Report.Warnings {
			out = append(out, fmt.Sprintf("apt: warning: %s", w))
		}
		for _, pr := range dl.Report.Packages {
			for _, w := range pr.Warnings {
				out = append(out, fmt.Sprintf("apt: warning: %s: %s", pr.Name, w))
			}
		}
	}
	return out
}
