package pytarget

import (
	"strings"
	"testing"
)

// TestDetectMajorOnly: python_version: 3 (a form spec validation accepts)
// matches any Python 3 and refuses another major.
func TestDetectMajorOnly(t *testing.T) {
	for _, tc := range []struct {
		want, err string
		minor     int
	}{
		{want: "3", minor: 11},
		{want: "2", err: "python_version is 2"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			got, err := Detect(fsOf(t, bookworm()...), Options{PythonVersion: tc.want})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Detect(python_version %s) = %+v, %v; want an error containing %q", tc.want, got, err, tc.err)
				}
				return
			}
			if err != nil || got.Major != 3 || got.Minor != tc.minor {
				t.Fatalf("Detect(python_version %s) = %+v, %v; want Python 3.%d", tc.want, got, err, tc.minor)
			}
		})
	}
}
