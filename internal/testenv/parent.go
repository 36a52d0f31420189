package testenv

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
)

const (
	// ParentRepository is the repository ParentImage and ParentIndex push to.
	ParentRepository = "debian/python3"
	// ParentTag is the tag of the single-platform parent image.
	ParentTag = "bookworm"
	// ParentIndexTag is the tag of the multi-platform parent index with a
	// fake arm64 image (ParentIndex).
	ParentIndexTag = "bookworm-multi"
	// ParentBothTag is the tag of the real two-platform parent index
	// (MultiArchParent).
	ParentBothTag = "bookworm-both"
	// ParentPath is the PATH of the parent image's config.
	ParentPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

	debianSuite = "bookworm"
)

// parentCacheName returns the file name of the cached rootfs tar of arch
// (a Debian architecture name).
func parentCacheName(arch string) string {
	if arch == "amd64" {
		return "bookworm-python3.tar"
	}
	return "bookworm-python3-" + arch + ".tar"
}

// parentPlatform returns the index platform of the parent image of arch, as
// Debian's official images give it (arm64 with variant v8).
func parentPlatform(arch string) v1.Platform {
	p := v1.Platform{OS: "linux", Architecture: arch}
	if arch == "arm64" {
		p.Variant = "v8"
	}
	return p
}

// ParentImage pushes a Debian bookworm (minbase + python3, linux/amd64, OCI
// media types) image to reg as <host>/debian/python3:bookworm and returns
// its reference by digest, "<host>/debian/python3@sha256:...".
//
// The root filesystem is built once with debootstrap from the machine's apt
// mirror (which needs root and about a minute) and cached, shared by all
// test packages, at <repo root>/.cache/testenv/bookworm-python3.tar.
func ParentImage(t testing.TB, reg *Registry) string {
	t.Helper()
	img := parentImage(t, "amd64")
	return pushImage(t, reg, ParentRepository+":"+ParentTag, img)
}

// MultiArchParent pushes an OCI image index to reg as
// <host>/debian/python3:bookworm-both holding two real Debian bookworm
// (minbase + python3) images, linux/amd64 (the ParentImage image) and
// linux/arm64/v8, and returns its reference by digest.
//
// The arm64 root filesystem is built once, like the amd64 one, with
// debootstrap --arch=arm64, whose second stage runs arm64 programs under
// qemu-user-static (see RequireQemuBinfmt), and cached at <repo
// root>/.cache/testenv/bookworm-python3-arm64.tar.
func MultiArchParent(t testing.TB, reg *Registry) string {
	t.Helper()
	var adds []mutate.IndexAddendum
	for _, arch := range []string{"amd64", "arm64"} {
		p := parentPlatform(arch)
		adds = append(adds, mutate.IndexAddendum{Add: parentImage(t, arch), Descriptor: v1.Descriptor{Platform: &p}})
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...)
	return pushIndex(t, reg, ParentRepository+":"+ParentBothTag, idx)
}

// ParentIndex pushes an OCI image index to reg as
// <host>/debian/python3:bookworm-multi holding the ParentImage image for
// linux/amd64 and a tiny fake (random content) linux/arm64 image, and
// returns its reference by digest.
func ParentIndex(t testing.TB, reg *Registry) string {
	t.Helper()
	amd64 := parentImage(t, "amd64")
	arm64, err := fakeImage("arm64")
	if err != nil {
		t.Fatalf("creating fake arm64 image: %v", err)
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	idx = mutate.AppendManifests(idx,
		mutate.IndexAddendum{Add: amd64, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm64, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}},
	)
	return pushIndex(t, reg, ParentRepository+":"+ParentIndexTag, idx)
}

// pushIndex pushes idx to reg as repoTag ("repo:tag") and returns the
// reference by digest.
func pushIndex(t testing.TB, reg *Registry, repoTag string, idx v1.ImageIndex) string {
	t.Helper()
	ref, err := name.ParseReference(reg.Host+"/"+repoTag, reg.NameOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx, reg.RemoteOptions(t.Context())...); err != nil {
		t.Fatalf("pushing parent index to %s: %v", ref, err)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return ref.Context().String() + "@" + d.String()
}

// pushImage pushes img to reg as repoTag ("repo:tag") and returns the
// reference by digest.
func pushImage(t testing.TB, reg *Registry, repoTag string, img v1.Image) string {
	t.Helper()
	ref, err := name.ParseReference(reg.Host+"/"+repoTag, reg.NameOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, reg.RemoteOptions(t.Context())...); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return ref.Context().String() + "@" + d.String()
}

func fakeImage(arch string) (v1.Image, error) {
	img, err := random.Image(512, 1)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	cf.Config.Env = []string{"PATH=" + ParentPath}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, err
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	return mutate.ConfigMediaType(img, types.OCIConfigJSON), nil
}

// parentImage returns the bookworm image of arch (a Debian architecture
// name), built from the cached rootfs.
func parentImage(t testing.TB, arch string) v1.Image {
	t.Helper()
	gz := parentRootfsTar(t, arch) + ".gz"
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return os.Open(gz) },
		tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatalf("opening parent layer: %v", err)
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			CreatedBy: "debootstrap --arch=" + arch + " --variant=minbase --include=python3 " + debianSuite,
			Comment:   "kiln testenv",
		},
	})
	if err != nil {
		t.Fatalf("appending parent layer: %v", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	p := parentPlatform(arch)
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	cf.Config.Env = []string{"PATH=" + ParentPath}
	cf.Config.Cmd = []string{"bash"}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatalf("setting parent config: %v", err)
	}
	return img
}

// ParentRootfsTar returns the path of the cached, deterministic,
// uncompressed tar of the bookworm+python3 root filesystem, building it with
// debootstrap if needed (see ParentImage). A gzip-compressed copy is kept
// next to it with the suffix ".gz".
func ParentRootfsTar(t testing.TB) string {
	t.Helper()
	return parentRootfsTar(t, "amd64")
}

// parentRootfsTar is ParentRootfsTar for arch (a Debian architecture name).
// A foreign architecture's debootstrap runs its second stage under
// qemu-user-static (see RequireQemuBinfmt): on a 2-core machine shared
// with other jobs the arm64 one took 3m44s (amd64: about a minute).
func parentRootfsTar(t testing.TB, arch string) string {
	t.Helper()
	dir := CacheDir(t)
	tarPath := filepath.Join(dir, parentCacheName(arch))
	gzPath := tarPath + ".gz"
	if fileExists(tarPath) && fileExists(gzPath) {
		return tarPath
	}
	err := withFileLock(tarPath+".lock", func() error {
		if !fileExists(tarPath) {
			RequireRoot(t)
			Require(t, "debootstrap")
			if arch != runtime.GOARCH {
				RequireQemuBinfmt(t, arch)
			}
			t.Logf("building %s parent rootfs with debootstrap (once; cached at %s)", arch, tarPath)
			start := time.Now()
			if err := buildParentTar(t.Context(), dir, tarPath, arch); err != nil {
				return err
			}
			t.Logf("built %s parent rootfs in %s", arch, time.Since(start).Round(time.Second))
		}
		if !fileExists(gzPath) {
			if err := gzipFile(tarPath, gzPath); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("building parent image rootfs: %v", err)
	}
	return tarPath
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// buildParentTar builds the bookworm+python3 rootfs of arch (a Debian
// architecture name) with debootstrap and packs it into tarPath.
func buildParentTar(ctx context.Context, cacheDir, tarPath, arch string) error {
	src, err := DebianSource(debianSuite)
	if err != nil {
		return err
	}
	buildDir, err := os.MkdirTemp(cacheDir, "bookworm-rootfs-"+arch+"-")
	if err != nil {
		return fmt.Errorf("creating debootstrap dir: %w", err)
	}
	defer os.RemoveAll(buildDir)
	rootfs := filepath.Join(buildDir, "rootfs")

	args := []string{"--arch=" + arch, "--variant=minbase", "--include=python3"}
	if src.SignedBy != "" && !strings.Contains(src.SignedBy, "\n") && fileExists(src.SignedBy) {
		args = append(args, "--keyring="+src.SignedBy)
	}
	args = append(args, debianSuite, rootfs, src.URI)
	var out syncBuffer
	cmd := exec.CommandContext(ctx, "debootstrap", args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C")
	runErr := cmd.Run()
	// debootstrap mounts proc and sys in the target; make sure nothing stays
	// mounted before we read or delete the tree.
	unmountUnder(rootfs)
	if runErr != nil {
		logTail, _ := os.ReadFile(filepath.Join(rootfs, "debootstrap", "debootstrap.log"))
		return fmt.Errorf("debootstrap %s: %w\n%s\ndebootstrap.log:\n%s", strings.Join(args, " "), runErr, out.String(), tail(string(logTail), 4000))
	}
	// Drop caches that have no business in an image, and slim it like
	// debian:bookworm-slim (no man pages, info, translations or docs other
	// than copyright files) so that tests push and pull less.
	for _, g := range []string{
		"var/cache/apt/archives/*.deb", "var/cache/apt/*.bin", "var/lib/apt/lists/*_*",
		"var/log/*.log", "var/log/apt/*", "var/cache/debconf/*-old",
		"usr/share/man/*", "usr/share/info/*", "usr/share/locale/*", "usr/share/doc/*/*",
	} {
		matches, _ := filepath.Glob(filepath.Join(rootfs, g))
		for _, m := range matches {
			if filepath.Base(m) == "copyright" || filepath.Base(m) == "locale.alias" {
				continue
			}
			os.RemoveAll(m)
		}
	}

	tmp, err := os.CreateTemp(cacheDir, filepath.Base(tarPath)+".tmp-")
	if err != nil {
		return fmt.Errorf("creating parent tar: %w", err)
	}
	defer os.Remove(tmp.Name())
	bw := bufio.NewWriterSize(tmp, 1<<20)
	if err := WriteDeterministicTar(bw, rootfs); err != nil {
		tmp.Close()
		return fmt.Errorf("packing %s: %w", rootfs, err)
	}
	if err := bw.Flush(); err != nil {
		tmp.Close()
		return fmt.Errorf("writing parent tar: %w", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing parent tar: %w", err)
	}
	if err := os.Rename(tmp.Name(), tarPath); err != nil {
		return fmt.Errorf("installing parent tar: %w", err)
	}
	return nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

func gzipFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("compressing parent tar: %w", err)
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), filepath.Base(dst)+".tmp-")
	if err != nil {
		return fmt.Errorf("compressing parent tar: %w", err)
	}
	defer os.Remove(tmp.Name())
	zw, err := gzip.NewWriterLevel(tmp, gzip.BestSpeed)
	if err != nil {
		tmp.Close()
		return err
	}
	if _, err := io.Copy(zw, in); err != nil {
		tmp.Close()
		return fmt.Errorf("compressing parent tar: %w", err)
	}
	if err := zw.Close(); err != nil {
		tmp.Close()
		return fmt.Errorf("compressing parent tar: %w", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("compressing parent tar: %w", err)
	}
	return os.Rename(tmp.Name(), dst)
}

// unmountUnder lazily unmounts every mount point at or below dir, deepest
// first.
func unmountUnder(dir string) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	abs, _ := filepath.Abs(dir)
	var points []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := f[4]
		if mp == abs || strings.HasPrefix(mp, abs+"/") {
			points = append(points, mp)
		}
	}
	for i := len(points) - 1; i >= 0; i-- {
		_ = syscall.Unmount(points[i], syscall.MNT_DETACH)
	}
}

// WriteDeterministicTar writes the tree at root to w as a tar stream with
// entries in lexical order, paths relative to root (directories with a
// trailing slash), numeric uid/gid, modification times truncated to
// seconds, no user/group names, access or change times, and hard links
// kept as link entries. Device nodes, FIFOs and sockets are skipped, and so
// is everything below dev/, proc/ and sys/ (the directories themselves are
// kept).
func WriteDeterministicTar(w io.Writer, root string) error {
	tw := tar.NewWriter(w)
	type inode struct{ dev, ino uint64 }
	seen := map[inode]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		for _, pseudo := range []string{"dev/", "proc/", "sys/"} {
			if strings.HasPrefix(rel, pseudo) {
				if d.IsDir() {
					return fs.SkipDir
				}
				return nil
			}
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		mode := fi.Mode()
		if mode&(fs.ModeDevice|fs.ModeCharDevice|fs.ModeNamedPipe|fs.ModeSocket) != 0 {
			return nil
		}
		var link string
		if mode&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		hdr.Name = rel
		if fi.IsDir() {
			hdr.Name += "/"
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("%s: no stat information", rel)
		}
		hdr.Uid, hdr.Gid = int(st.Uid), int(st.Gid)
		hdr.Uname, hdr.Gname = "", ""
		hdr.ModTime = fi.ModTime().Truncate(time.Second)
		hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
		hdr.Format = tar.FormatPAX
		if mode.IsRegular() && st.Nlink > 1 {
			key := inode{uint64(st.Dev), uint64(st.Ino)}
			if first, ok := seen[key]; ok {
				hdr.Typeflag = tar.TypeLink
				hdr.Linkname = first
				hdr.Size = 0
				return tw.WriteHeader(hdr)
			}
			seen[key] = rel
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		if mode.IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			if n, err := io.Copy(tw, f); err != nil {
				return fmt.Errorf("%s: %w", rel, err)
			} else if n != hdr.Size {
				return fmt.Errorf("%s: size changed while packing", rel)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// DebianSourceEntry is one apt source of the machine.
type DebianSourceEntry struct {
	// URI is the mirror, e.g. "http://HOST/debian".
	URI string
	// Suites and Components as configured.
	Suites, Components []string
	// SignedBy is the Signed-By option (usually a keyring path), if any.
	SignedBy string
}

// DebianSource returns the machine's first "deb" apt source whose suites
// include suite, read from /etc/apt/sources.list.d/*.sources (deb822), then
// /etc/apt/sources.list.d/*.list and /etc/apt/sources.list (one-line).
func DebianSource(suite string) (DebianSourceEntry, error) {
	var entries []DebianSourceEntry
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*.sources")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return DebianSourceEntry{}, fmt.Errorf("reading apt sources: %w", err)
		}
		entries = append(entries, parseDeb822Sources(string(data))...)
	}
	lists, _ := filepath.Glob("/etc/apt/sources.list.d/*.list")
	lists = append(lists, "/etc/apt/sources.list")
	for _, f := range lists {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		entries = append(entries, parseOneLineSources(string(data))...)
	}
	for _, e := range entries {
		for _, s := range e.Suites {
			if s == suite {
				return e, nil
			}
		}
	}
	return DebianSourceEntry{}, errors.New("no apt source for suite " + suite + " in /etc/apt/sources.list{,.d}")
}

func parseDeb822Sources(data string) []DebianSourceEntry {
	var out []DebianSourceEntry
	for _, para := range strings.Split(strings.ReplaceAll(data, "\r\n", "\n"), "\n\n") {
		fields := map[string]string{}
		var last string
		for _, line := range strings.Split(para, "\n") {
			if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
				continue
			}
			if (line[0] == ' ' || line[0] == '\t') && last != "" {
				fields[last] += "\n" + strings.TrimSpace(line)
				continue
			}
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			last = strings.ToLower(strings.TrimSpace(k))
			fields[last] = strings.TrimSpace(v)
		}
		if !containsWord(fields["types"], "deb") || strings.EqualFold(fields["enabled"], "no") {
			continue
		}
		for _, uri := range strings.Fields(fields["uris"]) {
			out = append(out, DebianSourceEntry{
				URI:        uri,
				Suites:     strings.Fields(fields["suites"]),
				Components: strings.Fields(fields["components"]),
				SignedBy:   fields["signed-by"],
			})
		}
	}
	return out
}

func parseOneLineSources(data string) []DebianSourceEntry {
	var out []DebianSourceEntry
	for _, line := range strings.Split(data, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "deb ") && !strings.HasPrefix(line, "deb\t") {
			continue
		}
		rest := strings.TrimSpace(line[3:])
		var signedBy string
		if strings.HasPrefix(rest, "[") {
			end := strings.Index(rest, "]")
			if end < 0 {
				continue
			}
			for _, opt := range strings.Fields(rest[1:end]) {
				if k, v, ok := strings.Cut(opt, "="); ok && k == "signed-by" {
					signedBy = v
				}
			}
			rest = rest[end+1:]
		}
		f := strings.Fields(rest)
		if len(f) < 2 {
			continue
		}
		out = append(out, DebianSourceEntry{URI: f[0], Suites: []string{f[1]}, Components: f[2:], SignedBy: signedBy})
	}
	return out
}

func containsWord(s, w string) bool {
	for _, f := range strings.Fields(s) {
		if f == w {
			return true
		}
	}
	return false
}
