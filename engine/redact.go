package engine

import (
	"errors"
	"net/url"
	"sort"
	"strings"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// Redacted is what RedactURL and RedactError put in place of a secret.
const Redacted = "xxxxx"

// secretNameParts are the parts of a query parameter or key/value DSN key
// that mark its value as a secret, compared in lower case: password,
// sslpassword, pass, passwd, passphrase, pwd, secret, client_secret, token,
// auth_token, ...
var secretNameParts = []string{"pass", "pwd", "secret", "token"}

// isSecretName reports whether a URL query parameter or DSN key holds a
// secret: its name contains one of secretNameParts in any letter case, or it
// is one of the Engine's own parameters that name a key-encryption key file
// (ParamKEKFile, ParamKEKPreviousFile: a key pasted there by mistake would
// be shown otherwise).
func isSecretName(name string) bool {
	n := strings.ToLower(name)
	if n == ParamKEKFile || n == ParamKEKPreviousFile {
		return true
	}
	for _, p := range secretNameParts {
		if strings.Contains(n, p) {
			return true
		}
	}
	return false
}

// RedactURL returns s, a backend URL or a PostgreSQL key/value DSN, fit for a
// log line or an error message: every secret it carries is replaced by
// Redacted ("xxxxx"). It is the one function the Engine, its registry and
// the ff command line use wherever they show a backend URL.
//
//   - the password of the URL's user info (the user name stays);
//   - the value of every query parameter whose name, in any letter case,
//     contains pass, pwd, secret or token (password, sslpassword, passwd,
//     client_secret, auth_token, ...), and of kek_file and
//     kek_previous_file;
//   - a fragment, entirely;
//   - in a key/value DSN ("host=db user=ff password='s e c r e t'"), the
//     value of every key named like a secret, quoted or not.
//
// A URL that does not parse is reduced to its scheme ("postgres://" and a
// note), since where its password ends cannot be told. A string that is
// neither a URL nor a DSN, such as a file path, is returned unchanged.
func RedactURL(s string) string {
	if isKeyValueDSN(s) {
		return redactKeyValueDSN(s)
	}
	u, err := url.Parse(s)
	if err != nil {
		scheme, _, ok := strings.Cut(s, "://")
		if ok && validScheme(scheme) {
			return scheme + "://(unparsable URL, redacted)"
		}
		return "(unparsable URL, redacted)"
	}
	changed := false
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), Redacted)
		changed = true
	}
	if u.Opaque != "" && strings.Contains(u.Opaque, "@") {
		// postgres:user:pw@host: no authority, so no parsed user info.
		u.Opaque = Redacted + u.Opaque[strings.LastIndex(u.Opaque, "@"):]
		changed = true
	}
	if q := redactQuery(u.RawQuery); q != u.RawQuery {
		u.RawQuery = q
		changed = true
	}
	if u.Fragment != "" {
		u.Fragment, u.RawFragment = Redacted, ""
		changed = true
	}
	if !changed {
		return s // as written: String would drop an empty authority (memory://)
	}
	return u.String()
}

// validScheme reports whether s is a URL scheme: a letter, then letters,
// digits, '+', '-' or '.'.
func validScheme(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}

// redactQuery replaces the value of every secret parameter of a raw query,
// keeping the order and encoding of the others.
func redactQuery(raw string) string {
	if raw == "" {
		return raw
	}
	parts := strings.Split(raw, "&")
	for i, p := range parts {
		k, _, _ := strings.Cut(p, "=")
		name, err := url.QueryUnescape(k)
		if err != nil {
			name = k
		}
		if err != nil || isSecretName(name) {
			parts[i] = k + "=" + Redacted
		}
	}
	return strings.Join(parts, "&")
}

// isKeyValueDSN reports whether s looks like a libpq key/value connection
// string: no "://", and it starts with a keyword and "=".
func isKeyValueDSN(s string) bool {
	if strings.Contains(s, "://") {
		return false
	}
	t := strings.TrimLeft(s, " \t\r\n")
	i := 0
	for i < len(t) && (t[i] == '_' || 'a' <= t[i] && t[i] <= 'z' || 'A' <= t[i] && t[i] <= 'Z' || '0' <= t[i] && t[i] <= '9') {
		i++
	}
	if i == 0 {
		return false
	}
	rest := strings.TrimLeft(t[i:], " \t")
	return strings.HasPrefix(rest, "=")
}

// kvPair is one key = value of a key/value DSN, with the byte span of its
// value in the DSN (quotes included).
type kvPair struct {
	key        string
	value      string // unquoted
	start, end int
}

// parseKeyValueDSN splits a libpq key/value string into its pairs: keys and
// values separated by '=' with optional spaces, values bare (up to the next
// space) or single-quoted with backslash escapes. A malformed tail becomes
// one last pair whose value runs to the end, so that it is redacted rather
// than shown.
func parseKeyValueDSN(s string) []kvPair {
	var out []kvPair
	i := 0
	skip := func() {
		for i < len(s) && strings.IndexByte(" \t\r\n", s[i]) >= 0 {
			i++
		}
	}
	for {
		skip()
		if i >= len(s) {
			return out
		}
		ks := i
		for i < len(s) && s[i] != '=' && strings.IndexByte(" \t\r\n", s[i]) < 0 {
			i++
		}
		key := s[ks:i]
		skip()
		if i >= len(s) || s[i] != '=' {
			// No '=' after the key: the rest is not a pair; keep it as a
			// value of the previous key, so it is redacted with it.
			if len(out) > 0 {
				out[len(out)-1].end = len(s)
			} else {
				out = append(out, kvPair{key: "", start: ks, end: len(s)})
			}
			return out
		}
		i++ // '='
		skip()
		vs := i
		var v strings.Builder
		if i < len(s) && s[i] == '\'' {
			i++
			for i < len(s) && s[i] != '\'' {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				v.WriteByte(s[i])
				i++
			}
			if i < len(s) {
				i++ // closing quote
			}
		} else {
			for i < len(s) && strings.IndexByte(" \t\r\n", s[i]) < 0 {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				v.WriteByte(s[i])
				i++
			}
		}
		out = append(out, kvPair{key: key, value: v.String(), start: vs, end: i})
	}
}

// redactKeyValueDSN replaces the values of the secret keys of a key/value
// DSN, keeping everything else as written.
func redactKeyValueDSN(s string) string {
	var b strings.Builder
	last := 0
	for _, p := range parseKeyValueDSN(s) {
		if p.key != "" && !isSecretName(p.key) {
			continue
		}
		b.WriteString(s[last:p.start])
		b.WriteString(Redacted)
		last = p.end
	}
	b.WriteString(s[last:])
	return b.String()
}

// minScrubLen is the shortest secret value RedactError looks for in a
// message: shorter ones would match ordinary words.
const minScrubLen = 4

// secretsIn returns the secret values s carries, in every form a message
// could quote them (as written and percent-decoded), longest first.
func secretsIn(s string) []string {
	seen := map[string]bool{}
	add := func(v string) {
		if len(v) >= minScrubLen {
			seen[v] = true
		}
	}
	if isKeyValueDSN(s) {
		for _, p := range parseKeyValueDSN(s) {
			if p.key == "" || isSecretName(p.key) {
				add(p.value)
				add(s[p.start:p.end])
			}
		}
	} else if u, err := url.Parse(s); err == nil {
		if pw, ok := u.User.Password(); ok {
			add(pw)
			add(url.UserPassword("", pw).String()[1:]) // percent-encoded form
		}
		for _, part := range strings.Split(u.RawQuery, "&") {
			k, v, _ := strings.Cut(part, "=")
			if name, err := url.QueryUnescape(k); err == nil && isSecretName(name) {
				add(v)
				if dv, err := url.QueryUnescape(v); err == nil {
					add(dv)
				}
			}
		}
		add(u.Fragment)
	}
	out := make([]string, 0, len(seen))
	for v := range seen {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// RedactError returns err with every secret of rawURL (the values
// RedactURL hides) replaced by Redacted in the detail of its contract
// error, and rawURL itself shown redacted wherever the detail quotes it. A
// driver error that quotes its URL therefore never carries a password to a
// log or an error envelope. The native error stays reachable through
// errors.Unwrap (it is never serialized). err is not modified: a changed
// error is a copy; an error that needs no change is returned as is.
func RedactError(err error, rawURL string) error {
	if err == nil {
		return nil
	}
	var ce *contracts.Error
	if !errors.As(err, &ce) {
		ce = contracts.AsError(err)
	}
	detail := ce.Detail
	if rawURL != "" && strings.Contains(detail, rawURL) {
		detail = strings.ReplaceAll(detail, rawURL, RedactURL(rawURL))
	}
	for _, v := range secretsIn(rawURL) {
		detail = strings.ReplaceAll(detail, v, Redacted)
	}
	if detail == ce.Detail {
		if errors.As(err, new(*contracts.Error)) {
			return err
		}
		return ce
	}
	c := *ce
	c.Detail = detail
	return &c
}
