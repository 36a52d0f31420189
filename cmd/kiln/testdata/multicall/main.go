// Command multicall is a tiny userland for the foreign-platform e2e test,
// built for another architecture: run as sh, it runs `sh -c SCRIPT` with
// mvdan.cc/sh's interpreter (which starts other programs with execve);
// run as uname (through a symlink), it prints what the kernel says its
// machine is, as uname -m does.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
	"mvdan.cc/sh/v3/interp"
	"mvdan.cc/sh/v3/syntax"
)

func main() {
	switch filepath.Base(os.Args[0]) {
	case "uname":
		var u unix.Utsname
		if err := unix.Uname(&u); err != nil {
			fmt.Fprintln(os.Stderr, "uname:", err)
			os.Exit(1)
		}
		fmt.Println(unix.ByteSliceToString(u.Machine[:]))
	default:
		if len(os.Args) != 3 || os.Args[1] != "-c" {
			fmt.Fprintln(os.Stderr, "usage: sh -c SCRIPT")
			os.Exit(2)
		}
		os.Exit(runScript(os.Args[2]))
	}
}

func runScript(script string) int {
	f, err := syntax.NewParser().Parse(strings.NewReader(script), "sh")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	r, err := interp.New(interp.StdIO(os.Stdin, os.Stdout, os.Stderr))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	err = r.Run(context.Background(), f)
	var status interp.ExitStatus
	if errors.As(err, &status) {
		return int(status)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
