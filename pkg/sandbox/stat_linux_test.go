//go:build linux

package sandbox_test

import "syscall"

type syscallStat = syscall.Stat_t
