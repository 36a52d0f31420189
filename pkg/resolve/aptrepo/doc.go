// Package aptrepo reads APT repository metadata without apt, gpgv or dpkg:
// it parses sources.list and deb822 .sources files, loads OpenPGP keyrings,
// fetches and verifies a suite's InRelease (or Release plus Release.gpg),
// and fetches Packages indices whose size and SHA-256 it checks against the
// verified Release before parsing them.
//
// The usual flow is:
//
//	srcs, _ := aptrepo.LoadSourcesDir("/etc/apt")
//	kr, _ := srcs[0].Keyring()
//	f := &aptrepo.HTTPFetcher{}
//	rel, _ := aptrepo.FetchRelease(ctx, f, srcs[0], srcs[0].Suites[0], kr, aptrepo.ReleaseOptions{})
//	idx, _ := aptrepo.FetchPackages(ctx, f, rel, "main", "amd64")
//
// Every Package in idx.Packages carries the absolute URL, size and SHA-256
// of its .deb, all of which trace back to the signed Release file.
package aptrepo
