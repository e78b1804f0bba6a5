package driver

import (
	"net/url"
	"strings"
	"testing"
)

func TestRedactedURL(t *testing.T) {
	for raw, want := range map[string]string{
		"postgres://app:s3cret@db:5432/app?sslpassword=s3cret&sslmode=require#s3cret": "postgres://app@db:5432/app",
		"valkey+cluster://:s3cret@h1:6379,h2:6379/0?password=s3cret":                  "valkey+cluster://@h1:6379,h2:6379/0",
		"sqlite:app:s3cret@host": "sqlite:xxxxx@host",
	} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		got := RedactedURL(u)
		if got != want || strings.Contains(got, "s3cret") {
			t.Errorf("RedactedURL(%q) = %q, want %q", raw, got, want)
		}
	}
}
