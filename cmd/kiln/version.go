package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/kiln-build/kiln/pkg/layer"
	"github.com/kiln-build/kiln/pkg/sandbox"
)

// versionText is what kiln version and kiln --version print: kiln's own
// version (its module version, or the commit it was built from), the
// layer and sandbox format versions that are part of every layer key (two
// kilns with the same formats reuse each other's cached layers), and the
// Go toolchain and platform.
func versionText(info *debug.BuildInfo, ok bool) string {
	v, rev := "(devel)", ""
	if ok {
		if info.Main.Version != "" {
			v = info.Main.Version
		}
		dirty := false
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev != "" && dirty {
			rev += "-dirty"
		}
	}
	line := "kiln " + v
	if rev != "" {
		line += " (commit " + rev + ")"
	}
	return fmt.Sprintf("%s\nlayer format: %s\nsandbox format: %s\ngo: %s %s/%s\n",
		line, layer.FormatVersion, sandbox.FormatVersion, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// cmdVersion prints versionText on stdout.
func cmdVersion(args []string, stdout io.Writer) error {
	if len(args) > 0 {
		return usageError{fmt.Errorf("unexpected argument %q; kiln version takes none", args[0])}
	}
	info, ok := debug.ReadBuildInfo()
	_, err := io.WriteString(stdout, versionText(info, ok))
	return err
}
