package sandbox

import (
	"os"
	"strings"
)

// ContainerFlags returns the podman run flags, beyond --user,
// --cap-drop=all and --security-opt no-new-privileges, with which kiln's
// image runs commands: user namespaces allowed by seccomp, a /proc the
// sandbox may mount its own over, and a cache directory that is not on the
// container's overlay root file system.
func ContainerFlags() []string {
	return []string{"--security-opt", "seccomp=unconfined", "--security-opt", "unmask=/proc/*", "--tmpfs", "/home/kiln/.cache:rw,exec,mode=1777"}
}

// InContainer reports whether kiln runs in a container: podman's
// /run/.containerenv, Docker's /.dockerenv, the container variable systemd
// and podman set, or a Kubernetes pod's service variables.
func InContainer() bool {
	for _, f := range []string{"/run/.containerenv", "/.dockerenv"} {
		if _, err := os.Stat(f); err == nil {
			return true
		}
	}
	return os.Getenv("container") != "" || os.Getenv("KUBERNETES_SERVICE_HOST") != ""
}

// containerAdvice says what a container must allow for the sandbox
// failure msg, or "" for a failure no container setting explains.
func containerAdvice(msg string) string {
	const all = "; the container needs, besides --user 1000 --cap-drop=all --security-opt no-new-privileges: " +
		"--security-opt seccomp=unconfined --security-opt unmask=/proc/* --tmpfs /home/kiln/.cache:rw,exec,mode=1777 " +
		"(Kubernetes: securityContext.seccompProfile.type: Unconfined, securityContext.procMount: Unmasked and an emptyDir volume at /home/kiln/.cache)"
	switch {
	case strings.Contains(msg, "user namespace") || strings.Contains(msg, "UTS namespace"):
		return "kiln runs in a container whose seccomp profile denies user namespaces: run it with --security-opt seccomp=unconfined" + all
	case strings.Contains(msg, "not supported as upperdir") || strings.Contains(msg, "overlayfs: upperdir"):
		return "kiln runs in a container and its cache is on the container's overlay root file system, on which overlayfs cannot stack: mount a tmpfs or a volume there, --tmpfs /home/kiln/.cache:rw,exec,mode=1777 or -v kiln-cache:/home/kiln/.cache" + all
	case strings.Contains(msg, "mount proc"):
		return "kiln runs in a container that masks parts of /proc, so the sandbox cannot mount its own: run it with --security-opt unmask=/proc/* (podman) or --security-opt systempaths=unconfined (Docker)" + all
	}
	return ""
}

// containerError is a sandbox failure in a container, with what the
// container needs.
type containerError struct {
	err    error
	advice string
}

func (e *containerError) Error() string { return e.err.Error() + " (" + e.advice + ")" }
func (e *containerError) Unwrap() error { return e.err }
