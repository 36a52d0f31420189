package build

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/pkg/cache"
	"github.com/kiln-build/kiln/pkg/layer"
	"github.com/kiln-build/kiln/pkg/sandbox"
	"github.com/kiln-build/kiln/pkg/spec"
)

// aptConfigureVersion names what the configure layer runs and leaves out
// (aptConfigureScript, aptConfigureSkipped, the post-passes): bump it when
// either changes.
const aptConfigureVersion = "kiln-apt-configure-v2"

// aptConfigureTimeout bounds dpkg --configure.
const aptConfigureTimeout = 30 * time.Minute

// aptScripts decides how the build's maintainer scripts take effect:
// spec.AptScriptsRun or spec.AptScriptsEmulate. With apt_scripts unset it
// is run when the sandbox can run the target's programs (the host's
// architecture, a binfmt handler or qemu-user-static registered in the
// sandbox, see sandbox.HowToRun; user namespaces allowed, a
// subordinate id range for the scripts' chown), else emulate, with why
// (fallback non-empty). An explicit run that cannot be honoured fails.
func (b *session) aptScripts() (mode, fallback string, err error) {
	s := b.p.Spec
	if s.AptScripts == spec.AptScriptsEmulate {
		return spec.AptScriptsEmulate, "", nil
	}
	explicit := s.AptScripts == spec.AptScriptsRun
	why := ""
	if b.parent.Scratch() {
		why = "base_image is scratch, which has no dpkg to configure the packages"
	} else if plat, perr := b.p.targetPlatform(); perr != nil {
		return "", "", perr
	} else if ex := sandbox.HowToRun(*plat, ""); !ex.OK() {
		why = fmt.Sprintf("programs for %s cannot run here: %s", s.Platform, ex.Reason)
	} else if ok, reason := sandbox.UsernsAvailable(); !ok {
		why = reason
	} else if _, warn := sandbox.HostIDMap(); warn != "" && !explicit {
		// An explicit run goes ahead with one uid (the sandbox warns);
		// by default, scripts whose chown would fail are not started.
		why = strings.TrimPrefix(warn, "sandbox: ")
	}
	switch {
	case why == "":
		return spec.AptScriptsRun, "", nil
	case explicit:
		return "", "", fmt.Errorf("apt_scripts: run: %s; or set apt_scripts: emulate, which runs no program of the image", why)
	}
	return spec.AptScriptsEmulate, why, nil
}

// aptConfigureScript configures what the Debian layer left unpacked, as
// apt-get does after unpacking: the image's own dpkg runs the postinst
// scripts in dependency order and then the pending triggers (ldconfig,
// update-mime-database, ...), non-interactively, keeping the packages'
// conffiles. No service starts: a policy-rc.d that refuses every action is
// in place while it runs (and removed after, unless the image has one).
const aptConfigureScript = `set -e
policy=
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
	chmod 755 /usr/sbin/policy-rc.d
	policy=1
fi
dpkg --configure --pending --force-confdef --force-confold
dpkg --triggers-only --pending --force-confdef --force-confold
if [ -n "$policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
dpkg --audit
`

// aptConfigureSkipped reports whether the configure layer leaves out path
// (root-relative): dpkg's and apt's logs, lock files and the per-run
// caches and backups that differ from one run to the next or say only
// that a run happened. The README lists them.
func aptConfigureSkipped(p string) bool {
	switch p {
	case "var/log/dpkg.log", "var/log/alternatives.log",
		"var/cache/ldconfig/aux-cache",
		"var/lib/dpkg/lock", "var/lib/dpkg/lock-frontend", "var/lib/dpkg/triggers/Lock",
		"var/lib/dpkg/status-old", "var/lib/dpkg/diversions-old", "var/lib/dpkg/statoverride-old",
		"var/cache/debconf/config.dat-old", "var/cache/debconf/templates.dat-old", "var/cache/debconf/passwords.dat-old",
		// A random id per machine (dbus-uuidgen, systemd-machine-id-setup):
		// an image must not carry one, every container makes its own.
		"var/lib/dbus/machine-id", "etc/machine-id":
		return true
	}
	return strings.HasPrefix(p, "var/log/apt/") || strings.HasPrefix(p, "var/cache/apt/")
}

// aptConfigureLayer is what the image's own dpkg changes when it
// configures the packages the Debian layer (below) left unpacked: run in
// the sandbox over the parent's layers and that layer, with the network
// off and SOURCE_DATE_EPOCH set.
type aptConfigureLayer struct {
	debs   *layer.Debs
	parent []v1.Layer
	below  v1.Layer // the Debian layer, set by buildLayers (setBelow)
	plat   v1.Platform
	epoch  time.Time
	cache  *cache.Cache
	log    io.Writer

	warnLog // what the sandbox run warned of
}

// Key chains the Debian layer's key (the parent's digest and the
// packages), the sandbox's and this layer's format versions.
func (l *aptConfigureLayer) Key() string {
	return fmt.Sprintf("aptconfigure\x00%s\x00%s\x00%s", aptConfigureVersion, sandbox.FormatVersion, l.debs.Key())
}

// Description says what the layer holds.
func (l *aptConfigureLayer) Description() string {
	return fmt.Sprintf("apt_packages: dpkg --configure (%d Debian packages)", len(l.debs.Packages))
}

// setBelow takes the layers buildLayers built before this one in the
// same step: the last is the Debian layer it configures.
func (l *aptConfigureLayer) setBelow(built []builtLayer) {
	if len(built) > 0 {
		l.below = built[len(built)-1].layer
	}
}

func (l *aptConfigureLayer) logf(format string, args ...any) {
	if l.log != nil {
		fmt.Fprintf(l.log, format+"\n", args...)
	}
}

// env is what dpkg and the scripts run with: nothing of the image's
// environment (the spec's PATH or a virtualenv must not change how a
// postinst runs), debconf non-interactive, and the build's epoch as
// SOURCE_DATE_EPOCH for the tools that stamp times.
func (l *aptConfigureLayer) env() []string {
	return []string{
		"PATH=" + sandbox.DefaultPath,
		"HOME=/root",
		"LC_ALL=C",
		"DEBIAN_FRONTEND=noninteractive",
		"DEBCONF_NONINTERACTIVE_SEEN=true",
		fmt.Sprintf("SOURCE_DATE_EPOCH=%d", l.epoch.Unix()),
	}
}

// WriteTar configures the packages in the sandbox and writes what that
// changed, without the paths aptConfigureSkipped names and with known
// formats that hold the time rewritten (aptConfigureFix).
func (l *aptConfigureLayer) WriteTar(ctx context.Context, tw *tar.Writer) error {
	if l.below == nil {
		return errors.New("apt: configure: the Debian layer was not built first")
	}
	ids, warn := sandbox.HostIDMap()
	if warn != "" {
		l.addWarning("apt: warning: " + strings.TrimPrefix(warn, "sandbox: "))
	}
	lowers, err := unpackLowers(ctx, l.cache, append(append([]v1.Layer(nil), l.parent...), l.below), ids)
	if err != nil {
		return fmt.Errorf("apt: configure: %w", err)
	}
	scratch, err := l.cache.NewScratch(ids)
	if err != nil {
		return fmt.Errorf("apt: configure: %w", err)
	}
	defer scratch.Remove(context.WithoutCancel(ctx))
	out := &linePrefixer{w: l.log, prefix: "apt| "}
	l.logf("apt: configuring %d packages with the image's dpkg in the sandbox (network off%s)", len(l.debs.Packages), emulationNote(l.plat))
	res, err := sandbox.Run(ctx, sandbox.Config{
		Lowers:   lowers,
		Upper:    scratch.Upper,
		Work:     scratch.Work,
		Command:  []string{"/bin/sh", "-c", aptConfigureScript},
		Env:      l.env(),
		Dir:      "/",
		Timeout:  aptConfigureTimeout,
		Stdout:   out,
		Stderr:   out,
		IDs:      ids,
		Platform: l.plat,
	})
	out.Flush()
	if err != nil {
		return fmt.Errorf("apt: configure the packages (dpkg --configure --pending in the sandbox; apt_scripts: emulate does without it): %w", err)
	}
	// The diff goes through a filter that drops the skipped paths and
	// rewrites the known formats.
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		ftw := tar.NewWriter(pw)
		err := sandbox.WriteDiff(ctx, ftw, scratch.Upper, sandbox.DiffOptions{
			IDs:         res.IDs,
			LowerExists: sandbox.LowerExists(lowers),
			Epoch:       l.epoch,
		})
		if err == nil {
			err = ftw.Close()
		}
		pw.CloseWithError(err)
		done <- err
	}()
	ferr := filterDiff(tar.NewReader(pr), tw, l.epoch)
	pr.CloseWithError(errors.New("apt: configure: filter stopped"))
	if werr := <-done; werr != nil {
		return fmt.Errorf("apt: configure: %w", werr)
	}
	if ferr != nil {
		return fmt.Errorf("apt: configure: %w", ferr)
	}
	return nil
}

// filterDiff copies the entries of tr to tw but those aptConfigureSkipped
// names (a whiteout of a skipped path included), rewriting the contents
// aptConfigureFix knows.
func filterDiff(tr *tar.Reader, tw *tar.Writer, epoch time.Time) error {
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		name := strings.TrimSuffix(h.Name, "/")
		dir, base := path.Split(name)
		if aptConfigureSkipped(name) || (strings.HasPrefix(base, ".wh.") && base != ".wh..wh..opq" && aptConfigureSkipped(dir+strings.TrimPrefix(base, ".wh."))) {
			continue
		}
		if h.Typeflag == tar.TypeReg {
			if fix := aptConfigureFix(name); fix != nil {
				data, err := io.ReadAll(tr)
				if err != nil {
					return err
				}
				data = fix(data, epoch)
				h.Size = int64(len(data))
				if err := tw.WriteHeader(h); err != nil {
					return err
				}
				if _, err := tw.Write(data); err != nil {
					return err
				}
				continue
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
}

// aptConfigureFix returns the post-pass for a file whose format holds the
// time of the run, or nil: Java's CA keystore, whose entries keytool
// stamps with the time they were added (see clampJKS).
func aptConfigureFix(name string) func([]byte, time.Time) []byte {
	if name == "etc/ssl/certs/java/cacerts" {
		return func(b []byte, epoch time.Time) []byte {
			out, _ := clampJKS(b, epoch, jksDefaultPassword)
			return out
		}
	}
	return nil
}
