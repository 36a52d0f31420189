package build

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestReadBuildSystem(t *testing.T) {
	sdists := filepath.Join("..", "..", "..", "shared", "fixtures", "sdists")
	for _, tc := range []struct {
		file, backend string
		requires      []string
	}{
		// No pyproject.toml: PEP 517's default, plus wheel.
		{"simple-2.0.tar.gz", "setuptools.build_meta:__legacy__", []string{"setuptools>=40.8.0", "wheel"}},
		// build-system.requires without a backend.
		{"pep518-3.0.tar.gz", "setuptools.build_meta:__legacy__", []string{"simplewheel==2.0", "setuptools", "wheel"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			bs, err := readBuildSystem(filepath.Join(sdists, tc.file), tc.file)
			if err != nil {
				t.Fatal(err)
			}
			if bs.backend != tc.backend || !slices.Equal(bs.requires, tc.requires) {
				t.Errorf("got backend %q requires %q, want %q %q", bs.backend, bs.requires, tc.backend, tc.requires)
			}
		})
	}
	for _, tc := range []struct {
		name, data, backend string
		requires            []string
		wantErr             string
	}{
		{"flit", "[build-system]\nrequires = [\"flit_core>=3.2\"]\nbuild-backend = \"flit_core.buildapi\"\n", "flit_core.buildapi", []string{"flit_core>=3.2"}, ""},
		{"setuptools with wheel", "[build-system]\nrequires = [\"setuptools\", \"Wheel>=0.38\"]\nbuild-backend = \"setuptools.build_meta\"\n", "setuptools.build_meta", []string{"setuptools", "Wheel>=0.38"}, ""},
		{"no build-system", "[project]\nname = \"x\"\n", "setuptools.build_meta:__legacy__", []string{"setuptools>=40.8.0", "wheel"}, ""},
		{"bad toml", "[build-system\n", "", nil, "pyproject.toml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bs, err := buildSystemOf([]byte(tc.data), "x-1.0.tar.gz")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want an error with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if bs.backend != tc.backend || !slices.Equal(bs.requires, tc.requires) {
				t.Errorf("got backend %q requires %q, want %q %q", bs.backend, bs.requires, tc.backend, tc.requires)
			}
		})
	}
}
