package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// funcs are the templates' helpers. Every one returns plain text, which
// html/template escapes where it is used.
func (c *Console) funcs() template.FuncMap {
	return template.FuncMap{
		"utc":        utcTime,
		"iso":        isoTime,
		"since":      func(nowMs, ms int64) string { return humanDuration(time.Duration(nowMs-ms) * time.Millisecond) },
		"until":      countdownText,
		"join":       strings.Join,
		"pathEscape": url.PathEscape,
		"add":        func(a, b int) int { return a + b },
	}
}

// utcTime formats ms since the epoch as "2026-12-06 12:00:03 UTC".
func utcTime(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02 15:04:05 UTC")
}

// isoTime formats ms for a <time datetime> attribute.
func isoTime(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339) }

// humanDuration writes d with its two largest units: "3d 4h", "2h 5m",
// "4m 10s", "12s". Negative durations are written as their magnitude.
func humanDuration(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	s := int64(d / time.Second)
	units := []struct {
		n    int64
		name string
	}{{86400, "d"}, {3600, "h"}, {60, "m"}, {1, "s"}}
	var parts []string
	for _, u := range units {
		q := s / u.n
		if q == 0 && len(parts) == 0 {
			continue
		}
		parts = append(parts, strconv.FormatInt(q, 10)+u.name)
		s -= q * u.n
		if len(parts) == 2 {
			break
		}
	}
	if len(parts) == 0 {
		return "0s"
	}
	return strings.Join(parts, " ")
}

// countdownText says how far deadlineMs is from nowMs: "in 2h 5m" or
// "5m 3s ago". The script (static/console.js) writes the same words.
func countdownText(nowMs, deadlineMs int64) string {
	d := time.Duration(deadlineMs-nowMs) * time.Millisecond
	if d >= 0 {
		return "in " + humanDuration(d)
	}
	return humanDuration(d) + " ago"
}

// payloadView is a signal's payload as a page shows it.
type payloadView struct {
	Text      string // pretty-printed JSON, at most MaxPayloadView bytes
	Null      bool   // no payload
	Bytes     int    // the stored (compact) size
	Truncated bool
}

// viewPayload pretty-prints a payload and caps what is shown; the text is
// escaped by the template like every other value.
func viewPayload(raw json.RawMessage) payloadView {
	if len(raw) == 0 || string(raw) == "null" {
		return payloadView{Null: true}
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		buf.Reset()
		buf.Write(raw)
	}
	v := payloadView{Bytes: len(raw)}
	text := buf.Bytes()
	if len(text) > MaxPayloadView {
		cut := MaxPayloadView
		for cut > 0 && !utf8.RuneStart(text[cut]) {
			cut--
		}
		text, v.Truncated = text[:cut], true
	}
	v.Text = string(text)
	return v
}

// parseGrace reads the rotation form's grace: a Go duration ("24h",
// "90m") of whole milliseconds, 0 to the largest grace the contract takes.
func parseGrace(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("grace: give a duration such as 24h or 90m")
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("grace: must be a duration such as 24h, 90m or 30s")
	}
	if d < 0 {
		return 0, fmt.Errorf("grace: must not be negative")
	}
	if d%time.Millisecond != 0 {
		return 0, fmt.Errorf("grace: must be whole milliseconds")
	}
	return d.Milliseconds(), nil
}
