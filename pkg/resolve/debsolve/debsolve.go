// Package debsolve decides which Debian binary packages must be added to an
// image so that a list of requested packages is installed with all of its
// dependencies satisfied.
//
// It works on package metadata only: the caller supplies the available
// packages (the universe, usually every stanza of the configured Packages
// indices) and the packages already installed in the parent image (its dpkg
// status), and Solve returns the packages to add, in an order in which they
// can be unpacked. The rules follow apt-get install --no-install-recommends
// for the cases users meet in practice:
//
//   - a dependency already satisfied by an installed or chosen package needs
//     nothing more, and installed packages are never upgraded unless they are
//     requested by name;
//   - Depends and Pre-Depends, with versions compared as dpkg does;
//   - alternatives are tried in order, preferring one that is already
//     installed or chosen;
//   - virtual packages: an unversioned Provides never satisfies a versioned
//     dependency, a versioned one (Provides: foo (= 1.2)) does;
//   - architecture qualifiers (:any, :native, :arch), Architecture: all and
//     Multi-Arch: same, foreign and allowed;
//   - Conflicts and Breaks against installed and chosen packages, including
//     through Provides, with backtracking over alternatives and versions;
//   - Recommends only when asked for.
//
// Solve is deterministic: the same request, with the universe in any order,
// gives the same result.
package debsolve

import (
	"fmt"
	"strings"
)

// Package is one binary package stanza, from a Packages index or from a dpkg
// status file. The relationship fields hold the raw text of the control
// fields, e.g. "libc6 (>= 2.34), libblas3 | libblas.so.3".
type Package struct {
	// Name is the Package field.
	Name string
	// Version is the Version field, e.g. "1:1.24.2-1+b1".
	Version string
	// Architecture is the Architecture field: "amd64", "all", ...
	Architecture string
	// MultiArch is the Multi-Arch field: "", "no", "same", "foreign" or
	// "allowed".
	MultiArch string

	// Depends, PreDepends, Recommends, Provides, Conflicts and Breaks are the
	// raw relationship fields.
	Depends, PreDepends, Recommends, Provides, Conflicts, Breaks string

	// Essential is the Essential field. Solve does not use it: Essential
	// packages of the parent image are simply part of Installed.
	Essential bool

	// Ref is not looked at by Solve; it is handed back unchanged in Result
	// so that callers can find where the stanza came from.
	Ref any
}

// String returns "name:arch=version".
func (p Package) String() string {
	return p.Name + ":" + p.Architecture + "=" + p.Version
}

// Request describes one resolution.
type Request struct {
	// Universe holds every package that may be installed. Several versions
	// and architectures of one name may be present; an exact duplicate of
	// name, version and architecture is ignored after its first occurrence.
	Universe []Package

	// Installed holds the packages already installed in the parent image.
	// They satisfy dependencies without being installed again and are never
	// upgraded unless requested by name.
	Installed []Package

	// Install lists the requested packages in apt-get syntax: "name",
	// "name=version", "name:arch" or "name:arch=version". A version ending in
	// "*" matches every version starting with what precedes it.
	Install []string

	// Arch is the native architecture; "amd64" when empty.
	Arch string

	// ForeignArchs lists the other architectures whose packages may be
	// installed, as dpkg --add-architecture does.
	ForeignArchs []string

	// InstallRecommends makes the Recommends of every added package
	// requested too. Unsatisfiable recommendations are skipped with a note.
	InstallRecommends bool

	// MaxSteps bounds the number of candidates the search may try before it
	// gives up; 0 means 200000.
	MaxSteps int
}

// Result is the outcome of a successful Solve.
type Result struct {
	// Install lists the packages to add, dependencies before dependents and
	// Pre-Depends strictly before the packages that need them. Packages in a
	// dependency cycle come in a deterministic order.
	Install []Step

	// Notes explains choices that a user may want to know about: which
	// provider was picked for a virtual package, recommendations skipped,
	// requested packages already installed or upgraded.
	Notes []string
}

// Step is one package to install and why it is needed.
type Step struct {
	// Package is the chosen stanza, as it was given in Request.Universe.
	Package Package

	// Chain holds package names from a requested package down to this one,
	// e.g. ["python3-numpy", "libblas3", "libgfortran5"].
	Chain []string

	// Via is the relationship that pulled the package in, e.g.
	// "Depends: libblas3 | libblas.so.3", or "requested".
	Via string
}

// Reason returns the chain as text: "python3-numpy -> libblas3 (Depends:
// libblas3 | libblas.so.3)".
func (s Step) Reason() string {
	return strings.Join(s.Chain, " -> ") + " (" + s.Via + ")"
}

// Error is returned by Solve when the request cannot be satisfied.
type Error struct {
	// Chain leads from a requested package to the relationship that could
	// not be satisfied, e.g. ["python3-numpy", "libblas3", "libgfortran5
	// (>= 8)"].
	Chain []string

	// Reason says why, naming the packages involved.
	Reason string
}

// Error implements error.
func (e *Error) Error() string {
	if len(e.Chain) == 0 {
		return e.Reason
	}
	return strings.Join(e.Chain, " -> ") + ": " + e.Reason
}

// Solve computes the packages to add to req.Installed so that every package
// in req.Install is installed with its dependencies. It fails with an *Error
// naming the chain of dependencies that led to an unknown package, an
// unsatisfiable dependency or a conflict.
func Solve(req Request) (Result, error) {
	if req.Arch == "" {
		req.Arch = "amd64"
	}
	if len(req.Install) == 0 {
		return Result{}, nil
	}
	targets := make([]Target, 0, len(req.Install))
	seen := map[string]Target{}
	for _, s := range req.Install {
		t, err := ParseTarget(s)
		if err != nil {
			return Result{}, err
		}
		key := t.Name + ":" + t.Arch
		if prev, ok := seen[key]; ok {
			if prev.Version != t.Version {
				return Result{}, &Error{Reason: fmt.Sprintf("%s is requested twice with different versions (%q and %q); keep one of them", t.Name, prev.String(), t.String())}
			}
			continue
		}
		seen[key] = t
		targets = append(targets, t)
	}
	idx, err := newIndex(req)
	if err != nil {
		return Result{}, err
	}
	s := newSolver(idx, req)
	for _, t := range targets {
		g, err := s.requestGoal(t)
		if err != nil {
			return Result{}, err
		}
		for _, c := range g.reqOpts {
			if c.installed {
				s.keptBy[c] = len(s.agenda)
			}
		}
		if o := s.selected[g.target.Name]; o != nil && o.installed {
			s.keptBy[o] = len(s.agenda)
		}
		s.agenda = append(s.agenda, g)
	}
	if !s.run(0) {
		if s.gaveUp {
			e := &Error{Reason: fmt.Sprintf("gave up after trying %d candidates; the request has too many conflicting alternatives: pin versions of the packages involved (name=version) or raise the step limit", s.steps)}
			if s.best != nil {
				e.Chain = s.best.err.Chain
				e.Reason += "; the most advanced dead end was: " + s.best.err.Reason
			}
			return Result{}, e
		}
		if s.best != nil {
			return Result{}, s.best.err
		}
		return Result{}, &Error{Reason: "no solution found"}
	}
	return s.result(), nil
}
