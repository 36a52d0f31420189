package auth

import (
	"strings"
	"testing"
)

func TestRedactURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://host/simple/", "https://host/simple/"},
		{"https://user:s3cret@host/simple/", "https://user:***@host/simple/"},
		{"https://t0ken@host/simple/", "https://***@host/simple/"},
		{"https://user:s3cret@host:8443/a%20b/", "https://user:***@host:8443/a%20b/"},
		{"https://us%40er:s3cret@host/", "https://us%40er:***@host/"},
		{"https://user:s3cret@ho st/%zz", "https://***@ho st/%zz"},
		{"https://user:s%zzcret@host", "https://***@host"},
		{"not a url", "not a url"},
		{"", ""},
	} {
		got := RedactURL(tc.in)
		if got != tc.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
		for _, secret := range []string{"s3cret", "t0ken", "s%zzcret"} {
			if strings.Contains(got, secret) {
				t.Errorf("RedactURL(%q) = %q shows %q", tc.in, got, secret)
			}
		}
	}
}

func TestRedactSecret(t *testing.T) {
	for _, tc := range []struct{ in, secret, want string }{
		{"dial tcp: pw=hunter2 hunter2", "hunter2", "dial tcp: pw=*** ***"},
		{"nothing here", "hunter2", "nothing here"},
		{"empty secret", "", "empty secret"},
	} {
		if got := RedactSecret(tc.in, tc.secret); got != tc.want {
			t.Errorf("RedactSecret(%q, %q) = %q, want %q", tc.in, tc.secret, got, tc.want)
		}
	}
}
