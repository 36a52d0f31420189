package testenv

import "testing"

// PushParentAs pushes the ParentImage image to reg as repoTag
// ("library/python:3.11-slim-bookworm"), for tests of a default parent
// served from the loopback registry, and returns its reference by digest.
func PushParentAs(t testing.TB, reg *Registry, repoTag string) string {
	t.Helper()
	return pushImage(t, reg, repoTag, parentImage(t, "amd64"))
}
