//go:build linux

package sandbox_test

import "syscall"

type syscallStat = syscall.Stat_t

func statT(p string, st *syscall.Stat_t) error { return syscall.Stat(p, st) }
