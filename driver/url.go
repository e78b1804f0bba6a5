package driver

import (
	"net/url"
	"strings"
)

// RedactedURL names the store of u in a driver's messages and errors:
// scheme, user name, hosts and path, without the password, the query or
// the fragment. u.Redacted() keeps the query, where a password may be too
// (?password=, ?sslpassword=). engine.OpenBackend also redacts every error
// an opener returns, so a driver that forgets is still covered.
func RedactedURL(u *url.URL) string {
	c := url.URL{Scheme: u.Scheme, Opaque: u.Opaque, Host: u.Host, Path: u.Path, RawPath: u.RawPath}
	if u.User != nil {
		c.User = url.User(u.User.Username())
	}
	if strings.Contains(c.Opaque, "@") {
		c.Opaque = "xxxxx" + c.Opaque[strings.LastIndex(c.Opaque, "@"):]
	}
	return c.String()
}
