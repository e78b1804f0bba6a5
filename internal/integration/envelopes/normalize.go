// Package envelopes makes histories of envelopes (docs/spec.md §7) taken
// from two runs comparable: the values that differ from run to run become
// stable placeholders, and everything else must match to the byte.
package envelopes

import (
	"regexp"
	"strconv"
)

var (
	uuidRE        = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	msRE          = regexp.MustCompile(`("[a-z_]+_at_ms"):[0-9]+`)
	macRE         = regexp.MustCompile(`:[0-9a-f]{64}"`)
	fingerprintRE = regexp.MustCompile(`("token_fingerprint"):"[0-9a-f]{16}"`)
	cursorRE      = regexp.MustCompile(`("next_cursor"):"[^"]+"`)
)

// Normalizer replaces the volatile values of one history, envelope after
// envelope: each distinct id becomes <id:N>, numbered in order of first
// appearance across the history (so two histories compare equal exactly
// when they repeat the same ids in the same places), every *_at_ms value
// "<ms>", every token MAC <mac>, every token fingerprint "<fingerprint>",
// and, with Cursors, every next_cursor "<cursor>". The zero value is
// ready to use; use one Normalizer per history.
type Normalizer struct {
	Cursors bool
	ids     map[string]string
}

// Normalize returns envelope with its volatile values replaced.
func (n *Normalizer) Normalize(envelope string) string {
	if n.ids == nil {
		n.ids = map[string]string{}
	}
	e := uuidRE.ReplaceAllStringFunc(envelope, func(id string) string {
		if _, ok := n.ids[id]; !ok {
			n.ids[id] = "<id:" + strconv.Itoa(len(n.ids)+1) + ">"
		}
		return n.ids[id]
	})
	e = msRE.ReplaceAllString(e, `$1:"<ms>"`)
	e = fingerprintRE.ReplaceAllString(e, `$1:"<fingerprint>"`)
	if n.Cursors {
		e = cursorRE.ReplaceAllString(e, `$1:"<cursor>"`)
	}
	return macRE.ReplaceAllString(e, `:<mac>"`)
}

// Normalize normalizes a whole history with a fresh Normalizer.
func Normalize(history []string) []string {
	var n Normalizer
	out := make([]string, len(history))
	for i, e := range history {
		out[i] = n.Normalize(e)
	}
	return out
}
