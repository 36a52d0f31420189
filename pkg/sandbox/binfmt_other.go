//go:build !linux

package sandbox

import v1 "github.com/google/go-containerregistry/pkg/v1"

// CanExecute reports no off Linux, where the sandbox does not run.
func CanExecute(platform v1.Platform) (ok bool, reason string) {
	return false, errNotLinux.Error()
}

// HowToRun reports ExecNone off Linux, where the sandbox does not run.
func HowToRun(platform v1.Platform, qemu string) Execution {
	return Execution{Mode: ExecNone, Reason: errNotLinux.Error()}
}
