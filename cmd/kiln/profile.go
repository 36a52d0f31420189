package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"runtime/trace"
)

// memoryLimit is the soft heap limit kiln sets when GOMEMLIMIT is unset:
// the garbage collector works harder near it instead of letting the heap
// double, which keeps a cold build (a Debian index of 60k packages in
// memory) near its live size. Large layers are streamed and never held.
const memoryLimit = 128 << 20

// startProfiling applies the memory limit and, for kiln's own performance
// work, writes a CPU profile to $KILN_CPUPROFILE and a heap profile to
// $KILN_MEMPROFILE, and an execution trace (go tool trace) to $KILN_TRACE.
// It returns the function that finishes the profiles.
func startProfiling(stderr io.Writer) func() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
	var stops []func()
	if p := os.Getenv("KILN_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			stops = append(stops, func() { pprof.StopCPUProfile(); f.Close() })
		} else {
			fmt.Fprintln(stderr, "kiln: cannot write a CPU profile to", p)
		}
	}
	if p := os.Getenv("KILN_TRACE"); p != "" {
		f, err := os.Create(p)
		if err == nil && trace.Start(f) == nil {
			stops = append(stops, func() { trace.Stop(); f.Close() })
		} else {
			fmt.Fprintln(stderr, "kiln: cannot write an execution trace to", p)
		}
	}
	if p := os.Getenv("KILN_MEMPROFILE"); p != "" {
		stops = append(stops, func() {
			f, err := os.Create(p)
			if err != nil {
				fmt.Fprintln(stderr, "kiln: cannot write a heap profile to", p)
				return
			}
			runtime.GC()
			pprof.Lookup("allocs").WriteTo(f, 0)
			f.Close()
		})
	}
	return func() {
		for _, s := range stops {
			s()
		}
	}
}
