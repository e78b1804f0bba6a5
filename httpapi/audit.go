package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"slices"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// Operations a keystore audit line names (its op attribute and the op label
// of ff_keystore_changes_total).
const (
	AuditSeed   = "seed"
	AuditRotate = "rotate_all"
	AuditRevoke = "revoke_kid"
)

// AuditMessage is the message of every keystore audit line.
const AuditMessage = "keystore audit"

// Caller says who asked for a keystore change, as far as the front end
// knows. Empty fields are left out of the audit line.
type Caller struct {
	Via        string // "cli", "http", "scheduler" or "console"
	Command    string // the ff command ("revoke", "rotate --auto", "serve") or the HTTP route name ("revoke_kid")
	User       string // the operating-system user running ff, when known
	RemoteAddr string // HTTP: the peer's address
	RequestID  string // HTTP: the request's X-Request-Id, as on its request line
}

func (c Caller) attrs() []slog.Attr {
	var out []slog.Attr
	for _, kv := range [][2]string{
		{"caller", c.Via}, {"command", c.Command}, {"user", c.User},
		{"remote_addr", c.RemoteAddr}, {"request_id", c.RequestID},
	} {
		if kv[1] != "" {
			out = append(out, slog.String(kv[0], kv[1]))
		}
	}
	return out
}

// KeystoreAudit records every seed, rotation and revocation (docs/spec.md
// §8.7) in one place for every front end: each call logs exactly one line
// with the message AuditMessage, and, when the audit belongs to a Handler,
// counts one change in ff_keystore_changes_total{op,outcome} (rotations
// also count their partitions in ff_rotations_total).
//
// The line's attributes: op (seed, rotate_all, revoke_kid), kid (left
// out when it is not a valid kid), outcome (the seed outcome; for rotate_all
// and revoke_kid the first failed entry's error code, else rotated or
// revoked when a partition changed, else noop; a call that failed as a
// whole gives its error code), the counts per partition outcome, the
// error codes met, and the caller. The level is INFO, WARN when something
// failed or a seed found another secret under its kid. A line never holds
// a secret, a token or an error's detail (which may name a backend URL):
// the audit is never handed any of them.
//
// A KeystoreAudit is safe for concurrent use.
type KeystoreAudit struct {
	log     *slog.Logger
	metrics *metrics // nil: log only
}

// NewKeystoreAudit returns an audit that logs to log (slog.Default() when
// nil) and counts nothing: for one-shot commands, whose process ends before
// any scrape.
func NewKeystoreAudit(log *slog.Logger) *KeystoreAudit {
	if log == nil {
		log = slog.Default()
	}
	return &KeystoreAudit{log: log}
}

// KeystoreAudit returns the handler's audit: it logs with Options.Logger
// and counts in the handler's metrics, so that changes made next to the
// API (ff serve's scheduled rotation, a seed at start-up) show on its
// /metrics like the admin routes' own.
func (h *Handler) KeystoreAudit() *KeystoreAudit { return h.audit }

// Seed records one seed of kid, answered out or err.
func (a *KeystoreAudit) Seed(ctx context.Context, c Caller, kid string, out contracts.SeedOutcome, err error) {
	outcome, level := out.Outcome, slog.LevelInfo
	attrs := []slog.Attr{}
	if err == nil {
		attrs = append(attrs, slog.String("current_kid", out.CurrentKid))
		if out.SameSecret != nil {
			attrs = append(attrs, slog.Bool("same_secret", *out.SameSecret))
			if !*out.SameSecret {
				level = slog.LevelWarn
			}
		}
	}
	if err != nil {
		outcome, level = contracts.AsError(err).Code, slog.LevelWarn
		attrs = append(attrs, slog.Any("error_codes", []string{outcome}))
	}
	a.record(ctx, level, c, AuditSeed, kid, outcome, attrs)
}

// RotateAll records one rotate_all to kid with the grace graceMs, answered
// res or err.
func (a *KeystoreAudit) RotateAll(ctx context.Context, c Caller, kid string, graceMs int64, res contracts.RotateAllResult, err error) {
	var t tally
	var previous []string
	for _, e := range res.Entries {
		switch {
		case e.Error != nil:
			t.fail(e.Error.Code)
		case e.Outcome != nil && e.Outcome.Outcome == contracts.RotateRotated:
			t.changed++
			if p := e.Outcome.PreviousKid; p != nil && !slices.Contains(previous, *p) {
				previous = append(previous, *p)
			}
		default:
			t.noop++
		}
	}
	if err == nil && a.metrics != nil {
		a.metrics.observeRotation(res)
	}
	attrs := []slog.Attr{slog.Int64("grace_ms", graceMs)}
	if len(previous) > 0 {
		slices.Sort(previous)
		attrs = append(attrs, slog.Any("previous_kids", previous))
	}
	a.entries(ctx, c, AuditRotate, kid, contracts.RotateRotated, len(res.Entries), t, err, attrs)
}

// RevokeKid records one revoke_kid of kid, answered res or err.
func (a *KeystoreAudit) RevokeKid(ctx context.Context, c Caller, kid string, res contracts.RevokeKidResult, err error) {
	var t tally
	for _, e := range res.Entries {
		switch {
		case e.Error != nil:
			t.fail(e.Error.Code)
		case e.Outcome != nil && e.Outcome.Outcome == contracts.RevokeRevoked:
			t.changed++
		default:
			t.noop++
		}
	}
	a.entries(ctx, c, AuditRevoke, kid, contracts.RevokeRevoked, len(res.Entries), t, err, nil)
}

// tally counts the entries of a per-partition result.
type tally struct {
	changed, noop, failed int
	codes                 []string // distinct error codes, in order of first appearance
}

func (t *tally) fail(code string) {
	t.failed++
	if !slices.Contains(t.codes, code) {
		t.codes = append(t.codes, code)
	}
}

// entries records a per-partition operation: changedWord names a changed
// partition (rotated, revoked).
func (a *KeystoreAudit) entries(ctx context.Context, c Caller, op, kid, changedWord string, partitions int, t tally, err error, extra []slog.Attr) {
	outcome, level := contracts.RotateNoop, slog.LevelInfo
	switch {
	case err != nil:
		outcome, level = contracts.AsError(err).Code, slog.LevelWarn
		t.codes = []string{outcome}
	case len(t.codes) > 0:
		outcome, level = t.codes[0], slog.LevelWarn
	case t.changed > 0:
		outcome = changedWord
	}
	attrs := []slog.Attr{
		slog.Int("partitions", partitions),
		slog.Int(changedWord, t.changed), slog.Int("noop", t.noop), slog.Int("failed", t.failed),
	}
	if len(t.codes) > 0 {
		attrs = append(attrs, slog.Any("error_codes", t.codes))
	}
	a.record(ctx, level, c, op, kid, outcome, append(attrs, extra...))
}

// record writes the one audit line and counts the change.
func (a *KeystoreAudit) record(ctx context.Context, level slog.Level, c Caller, op, kid, outcome string, attrs []slog.Attr) {
	line := []slog.Attr{slog.String("op", op)}
	if contracts.ValidateKid("kid", kid) == nil {
		line = append(line, slog.String("kid", kid))
	}
	line = append(line, slog.String("outcome", outcome))
	line = append(line, attrs...)
	line = append(line, c.attrs()...)
	a.log.LogAttrs(ctx, level, AuditMessage, line...)
	if a.metrics != nil {
		a.metrics.keystoreChanges.Inc(op, outcome)
	}
}

// httpCaller is the caller of an admin route: its name, the peer's address
// and the request id.
func httpCaller(r *http.Request, route string) Caller {
	id, _ := r.Context().Value(requestIDKey{}).(string)
	return Caller{Via: "http", Command: route, RemoteAddr: r.RemoteAddr, RequestID: id}
}

// requestIDKey carries the request id in the request's context, for the
// audit line to repeat it.
type requestIDKey struct{}
