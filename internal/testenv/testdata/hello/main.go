// Command hello is a stand-in for kiln in testenv's own tests: it prints its
// uid, gid, umask-affected file mode, working directory and some env.
package main

import (
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	f := filepath.Join(os.TempDir(), fmt.Sprintf("hello-umask-%d", os.Getpid()))
	mode := "?"
	if err := os.WriteFile(f, nil, 0o666); err == nil {
		if fi, err := os.Stat(f); err == nil {
			mode = fmt.Sprintf("%04o", fi.Mode().Perm())
		}
		os.Remove(f)
	}
	wd, _ := os.Getwd()
	fmt.Printf("uid=%d gid=%d groups=%d mode=%s\n", os.Getuid(), os.Getgid(), len(mustGroups()), mode)
	fmt.Printf("wd=%s\nHOME=%s\nXDG_CACHE_HOME=%s\nSOURCE_DATE_EPOCH=%s\nargs=%q\n", wd, os.Getenv("HOME"), os.Getenv("XDG_CACHE_HOME"), os.Getenv("SOURCE_DATE_EPOCH"), os.Args[1:])
	if len(os.Args) > 1 && os.Args[1] == "fail" {
		fmt.Fprintln(os.Stderr, "failing as asked")
		os.Exit(3)
	}
}

func mustGroups() []int {
	g, _ := os.Getgroups()
	return g
}
