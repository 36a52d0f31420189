package sandbox

import "fmt"

// NotLinuxError is the error Available returns on goos/goarch other than
// Linux: what the sandbox needs, what still builds there, and where to
// build the rest.
func NotLinuxError(goos, goarch string) error {
	return fmt.Errorf("running commands needs Linux (user namespaces and overlayfs, kernel 5.11+) and this kiln runs on %s/%s: "+
		"build this spec on Linux (a CI runner, or kiln's own image in a Linux VM); apt_packages, packages, source_root and copy build here, "+
		"and a commands layer that cache_from or the local cache holds is reused without running them", goos, goarch)
}
