package valkey

// Fuzz targets for the decoding of script replies and server error replies,
// without a server: whatever a reply holds (a bug in a script, a store
// written by something else, a hostile value stored verbatim), decoding
// must not panic or loop without bound, and must either fail with a
// contract error or return values that are exactly what was encoded.

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// fzReply turns one fuzzed string into a script reply: elements separated by
// \x1e; "#<n>" is an integer reply, "~" a nil, anything else a bulk string.
func fzReply(s string) []any {
	if s == "" {
		return nil
	}
	parts := strings.Split(s, "\x1e")
	out := make([]any, len(parts))
	for i, p := range parts {
		if n, err := strconv.ParseInt(strings.TrimPrefix(p, "#"), 10, 64); err == nil && strings.HasPrefix(p, "#") {
			out[i] = n
		} else if p == "~" {
			out[i] = nil
		} else {
			out[i] = p
		}
	}
	return out
}

// fzReplySeeds are well-formed replies of each script, and hostile values.
var fzReplySeeds = []string{
	"1767225600000\x1ek1\x1e1\x1ek1\x1e\x1e" + strings.Repeat("ab", 32),
	"1767225600000\x1ek2\x1e2\x1ek1\x1e1767225700000\x1e\x1ek2\x1e\x1e" + strings.Repeat("cd", 32),
	"#1767225600000\x1e\x1e#0",
	"rotated\x1ek1\x1e#3", "noop\x1ek1", "rotated\x1e\x1eX", "current\x1e" + strings.Repeat("ab", 32), "current",
	"exec-1\x1esus-1\x1e1767225600000\x1e\x1e2\x1evip eu\x1eexec-2\x1esus-2\x1e1767225600001\x1e1767225700000\x1e1\x1e",
	// suspend_read naming one pending waitpoint, found and signaled, with its signal
	"1767225600000\x1ek1\x1eabab\x1e\x1e\x1e\x1e\x1e-\x1e\x1e\x1e\x1e1\x1e1\x1ek-new\x1ea\x1e1767225600000\x1e1767225700000\x1e0\x1e1\x1e2" +
		"\x1e1767225600000|1:s1:w1:k1:n2:{}0:",
	// get_waitpoint of a pending waitpoint
	"1767225600000\x1ek-new\x1ea\x1e1767225600000\x1e\x1e0\x1e1\x1e" + strings.Repeat("ab", 32) + "\x1e1767225700000\x1e\x1email",
	"claimed\x1eexec-1\x1esus-1\x1esignal\x1e1767225630000\x1e1767225600000|1:s1:w1:k1:n2:{}0:",
	"1767225600000|36:0b8f6c1e-2f4a-4c3b-9d7e-5a6b7c8d9e0f1:w1:k1:n0:2:]]",
	"1|1:a1:b1:c1:d1:e1:f", "1|99:a", "1|-1:a", "1|+1:a1:b1:c1:d1:e1:f",
	"'); DROP TABLE\x1e]]\x1e\x00\x1e\r\n$3\r\nDEL\r\n\x1e~",
}

func FuzzParseKeysReply(f *testing.F) {
	for _, s := range fzReplySeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v := fzReply(s)
		lk, err := parseKeys(v)
		if err != nil {
			if !errors.Is(err, errMalformedReply) {
				t.Fatalf("parseKeys error %v is not errMalformedReply", err)
			}
			return
		}
		if cur := str(v, 1); (cur == "") != (lk.keys.Current == nil) {
			t.Fatalf("current kid %q decoded as %+v", cur, lk.keys.Current)
		}
		for _, r := range lk.keys.Verifying {
			if r.ExpiresAtMs == nil {
				t.Fatalf("verifying kid %q without expiry", r.Kid)
			}
		}
	})
}

func FuzzParseReplies(f *testing.F) {
	for _, s := range fzReplySeeds {
		f.Add(s, "k-new")
	}
	f.Fuzz(func(t *testing.T, s, kid string) {
		v := fzReply(s)
		checkErr := func(what string, err error) {
			t.Helper()
			var ce *contracts.Error
			if err != nil && !errors.As(err, &ce) {
				t.Fatalf("%s: error %v is not a contract error", what, err)
			}
		}
		for _, same := range []bool{false, true} {
			out, err := parseRotate(partitionReply{values: v}, kid, func(string) (bool, error) { return same, nil })
			checkErr("parseRotate", err)
			if err == nil && out.Outcome != contracts.RotateNoop && out.Outcome != contracts.RotateRotated {
				t.Fatalf("parseRotate accepted outcome %q", out.Outcome)
			}
			if err == nil && str(v, 0) == "current" && (!same || out.Kid != kid) {
				t.Fatalf("parseRotate: a current kid with another stored form is %+v (same secret: %v)", out, same)
			}
		}
		page, err := parseListRows(v)
		checkErr("parseListRows", err)
		if err == nil && len(page)*listRowLen != len(v) {
			t.Fatalf("parseListRows: %d rows from %d values", len(page), len(v))
		}
		if len(v) > 0 && str(v, 0) == contracts.OutcomeClaimed {
			_, err = parseClaims(v)
			checkErr("parseClaim", err)
		}
		_, err = decodeSignals(v)
		checkErr("decodeSignals", err)
		pending := contracts.SuspendArgs{ExecutionID: kid, Waitpoints: []contracts.WaitpointSpec{{Pending: kid}, {Key: "k"}}}
		_, err = parseSuspendRead(pending, v)
		checkErr("parseSuspendRead", interpretError(err))
		_, err = parseWaitpointRecord(contracts.GetWaitpointArgs{ExecutionID: kid, WaitpointID: kid}, v)
		checkErr("parseWaitpointRecord", interpretError(err))
		rk, err := replayKeys(nil, 0, 0, kid, v)
		checkErr("replayKeys", err)
		if err == nil {
			_, err = replaySuspend(s, contracts.SuspendArgs{ExecutionID: kid}, rk, 0)
			checkErr("replaySuspend", err)
		}
	})
}

// FuzzSignalRecordRoundTrip stores any six byte strings (signal_id,
// waitpoint_id, waitpoint_key, name, payload, idempotency_key) the way
// DeliverSignal does and decodes them the way observe and claim do: every
// byte comes back, whatever it is (NUL, CRLF, '|', ':', digits, invalid
// UTF-8).
func FuzzSignalRecordRoundTrip(f *testing.F) {
	f.Add("s", "w", "k", "n", `{"a":1}`, "i", int64(1767225600000))
	f.Add("", "", "", "", "", "", int64(0))
	f.Add("1:", "|", "2:ab", "\r\n", "\x00", "]]'); DROP TABLE", int64(-1))
	f.Fuzz(func(t *testing.T, id, wp, key, name, payload, idem string, at int64) {
		enc := encodeFields(id, wp, key, name, payload, idem)
		got, err := decodeFields(enc, 6)
		if err != nil {
			t.Fatalf("decodeFields(encodeFields(...)): %v", err)
		}
		want := []string{id, wp, key, name, payload, idem}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("field %d: %q came back as %q", i, want[i], got[i])
			}
		}
		sigs, err := decodeSignals([]any{strconv.FormatInt(at, 10) + "|" + enc})
		if err != nil || len(sigs) != 1 {
			t.Fatalf("decodeSignals: %v", err)
		}
		s := sigs[0]
		if s.SignalID != id || s.WaitpointID != wp || s.WaitpointKey != key || s.Name != name ||
			string(s.Payload) != payload || s.IdempotencyKey != idem || s.DeliveredAtMs != at {
			t.Fatalf("signal record did not round-trip: %+v", s)
		}
		if _, err := decodeFields(enc+"x", 6); err == nil {
			t.Fatalf("trailing bytes accepted")
		}
	})
}

// fzRedisError is a server error reply.
type fzRedisError string

func (e fzRedisError) Error() string { return string(e) }
func (fzRedisError) RedisError()     {}

// FuzzServerErrorReply maps any server error text: always a contract error,
// "FF <code> ..." only onto a code this driver raises, and the reply's text
// never copied into the detail (it could quote stored values).
func FuzzServerErrorReply(f *testing.F) {
	for _, s := range []string{
		"ERR FF already_suspended exec-1 suspended", "FF lease_mismatch suspend exec-1", "FF lease_mismatch none",
		"FF rotation_conflict current k1", "FF partition_count_mismatch 256 1", "FF execution_not_found",
		"FF bogus", "FF ", "FF store_reset 3 gone", "FF store_reset x]] changed", "LOADING Redis is loading", "NOSCRIPT No matching script", "ERR user_script:1: ']]' \x00",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, msg string) {
		err := interpretError(fzRedisError(msg))
		var ce *contracts.Error
		if !errors.As(err, &ce) {
			t.Fatalf("interpretError(%q) = %v, not a contract error", msg, err)
		}
		if ce.Kind == "" || ce.Code == "" {
			t.Fatalf("interpretError(%q) = %+v: no kind or code", msg, ce)
		}
		if ce.Code == contracts.CodeInternal && len(msg) > 8 && strings.Contains(ce.Detail, msg) {
			t.Fatalf("detail copies the server's reply: %q", ce.Detail)
		}
	})
}
