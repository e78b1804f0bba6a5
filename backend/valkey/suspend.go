package valkey

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/kek"
)

// Suspend opens 1–16 waitpoints for an execution, new ones and pending
// ones made by create_waitpoint, in two script calls on its partition
// (docs/spec.md §5.1, §8.1): suspend_read reads the clock, the current kid
// with its secret, the idempotency record, the execution and the pending
// waitpoints named (with their buffered signals when they satisfy the
// condition); every rule is decided here with the driver kit and the
// tokens are signed here; suspend_write writes atomically, provided the
// kid is still current and the execution unchanged since the read (its
// version), else both steps run again, up to maxAttempts. The clock is
// read once, in the first step: created_at_ms is signed into the tokens.
// Tokens are never stored (docs/spec.md §3): the idempotency record keeps
// driver.StoredSuspendOutcome, and a replay (one call, suspend_read, which
// also reads the record's kid) signs them again. An execution in state
// none whose pending waitpoints all expired is forgotten before the checks
// (driver.ForgetsExpiredPending) by suspend_write with the suspension; a
// refused suspend forgets nothing, as no failed call writes.
func (b *Backend) Suspend(ctx context.Context, args contracts.SuspendArgs) (contracts.SuspendOutcome, error) {
	p := driver.PartitionOf(args.ExecutionID, b.parts)
	readArgv := []any{args.ExecutionID, args.IdempotencyKey, strconv.Itoa(conditionNeed(args.Condition, len(args.Waitpoints)))}
	for _, id := range driver.PendingIDs(args) {
		readArgv = append(readArgv, id)
	}
	for range maxAttempts {
		v, err := b.run(ctx, scriptSuspendRead, p, readArgv...)
		if err != nil {
			return contracts.SuspendOutcome{}, err
		}
		d := b.decideSuspend(args, p, v)
		if d.argv == nil { // an error, or a replay
			if d.err == nil && b.waitReplicas > 0 {
				// A replay acknowledges the recorded suspend, which the
				// replicas may not hold yet (replication.go).
				if err := b.confirm(ctx, []int{p})[0]; err != nil {
					return contracts.SuspendOutcome{}, err
				}
			}
			return d.out, d.err
		}
		w, err := b.run(ctx, scriptSuspendWrite, p, d.argv...)
		if err != nil {
			return contracts.SuspendOutcome{}, err
		}
		if str(w, 0) == "ok" {
			return d.out, nil
		}
		// "retry": the current kid changed between the two steps, or the
		// execution did (a concurrent suspend, create_waitpoint, delivery
		// to a pending waitpoint, claim...): decide again on what is there.
	}
	return contracts.SuspendOutcome{}, errRetriesExhausted("suspend")
}

// decision is what a two-step write decided on its read: the outcome and
// the ARGV of its write, or an answer without a write (an error, or a
// suspend replay: argv nil).
type decision[T any] struct {
	out  T
	argv []any
	err  error
}

// refuse is a decision to answer err, writing nothing.
func refuse[T any](err error) decision[T] {
	return decision[T]{err: err}
}

// decideSuspend decides a suspend on what suspend_read returned (v), in
// the order of docs/spec.md §5.1 and §8.1: no current kid; an execution in
// state none whose pending waitpoints all expired is forgotten first
// (driver.ForgetsExpiredPending: its idempotency records and pending
// waitpoints with it); a replay; driver.CheckSuspend; driver.CheckPendingUse.
func (b *Backend) decideSuspend(args contracts.SuspendArgs, p int, v []any) decision[contracts.SuspendOutcome] {
	r, err := parseSuspendRead(args, v)
	if err != nil {
		return refuse[contracts.SuspendOutcome](interpretError(err))
	}
	if r.kid == "" {
		return refuse[contracts.SuspendOutcome](driver.NotInitialized())
	}
	pl := suspendPlan{args: args, now: r.now, ver: r.exec.ver, found: r.found, signals: r.signals}
	if pl.forget = r.exec.forgets(r.now); pl.forget {
		r.exec.state, r.rec, pl.found = nil, "", map[string]*driver.PendingWaitpoint{}
	}
	fail := func(err error) decision[contracts.SuspendOutcome] {
		return refuse[contracts.SuspendOutcome](err)
	}
	if r.rec != "" {
		keys, err := replayKeys(b.keyring(), p, r.now, r.kid, v)
		if err != nil {
			return fail(err)
		}
		out, err := replaySuspend(r.rec, args, keys, r.now)
		return decision[contracts.SuspendOutcome]{out: out, err: err}
	}
	if err := driver.CheckSuspend(r.exec.state, args.LeaseID); err != nil {
		return fail(err)
	}
	if err := driver.CheckPendingUse(args, pl.found, r.now); err != nil {
		return fail(err)
	}
	if driver.PendingSatisfied(args, pl.found) && !r.buffered {
		// suspend_read counts as PendingSatisfied does: it sent the signals.
		return fail(interpretError(errMalformedReply))
	}
	current, err := b.openCurrent(p, r.kid, r.secretHex)
	if err != nil {
		return fail(err)
	}
	out, argv, err := pl.write(current)
	if err != nil {
		return fail(err)
	}
	return decision[contracts.SuspendOutcome]{out: out, argv: argv}
}

// suspendRead is a decoded suspend_read reply.
type suspendRead struct {
	now            int64
	kid, secretHex string // the current kid and its stored secret
	rec            string // the idempotency record: fingerprint, then the stored outcome
	exec           execView
	found          map[string]*driver.PendingWaitpoint // by id; absent: no pending waitpoint with that id
	buffered       bool                                // signals holds the pending waitpoints' signals
	signals        []contracts.Signal
}

// suspendReadFixed is how many values of a suspend_read reply precede the
// pending waitpoints (8 values each), after which come the signals.
const suspendReadFixed, pendingItemLen = 12, 8

// parseSuspendRead decodes a suspend_read reply for args.
func parseSuspendRead(args contracts.SuspendArgs, v []any) (suspendRead, error) {
	ids := driver.PendingIDs(args)
	if len(v) < suspendReadFixed+pendingItemLen*len(ids) {
		return suspendRead{}, errMalformedReply
	}
	now, err := num(v, 0)
	if err != nil {
		return suspendRead{}, err
	}
	r := suspendRead{now: now, kid: str(v, 1), secretHex: str(v, 2), rec: str(v, 3), buffered: str(v, 11) == "1",
		found: make(map[string]*driver.PendingWaitpoint, len(ids))}
	if r.exec, err = parseExecView(args.ExecutionID, v[7:11]); err != nil {
		return suspendRead{}, err
	}
	for i, id := range ids {
		w, err := parsePending(id, v[suspendReadFixed+pendingItemLen*i:])
		if err != nil {
			return suspendRead{}, err
		}
		if w != nil {
			r.found[id] = w
		}
	}
	if r.signals, err = decodeSignals(v[suspendReadFixed+pendingItemLen*len(ids):]); err != nil {
		return suspendRead{}, err
	}
	return r, nil
}

// parsePending decodes one pending waitpoint of a suspend_read reply: found
// '1'|'0', execution_id, key, created_at_ms, expires_at_ms, used '1'|'0',
// signals, payload bytes. It returns nil when not found.
func parsePending(id string, v []any) (*driver.PendingWaitpoint, error) {
	if str(v, 0) != "1" {
		return nil, nil
	}
	created, err1 := num(v, 3)
	expires, err2 := num(v, 4)
	signals, err3 := num(v, 6)
	bytes, err4 := num(v, 7)
	for _, err := range []error{err1, err2, err3, err4} {
		if err != nil {
			return nil, err
		}
	}
	return &driver.PendingWaitpoint{
		ID: id, ExecutionID: str(v, 1), Key: str(v, 2), CreatedAtMs: created, ExpiresAtMs: expires,
		Used: str(v, 5) == "1", Signals: int(signals), PayloadBytes: bytes,
	}, nil
}

// execView is what suspend and create_waitpoint decide on of an execution
// (ff_exec_view in lua/prelude.lua): the version suspend_write and
// create_write compare, and its state.
type execView struct {
	ver   string                 // "-": not remembered
	state *driver.ExecutionState // nil: not remembered; State "": remembered in state none
	plast int64                  // the latest expires_at_ms of its pending waitpoints (0: none)
}

// parseExecView decodes ver, state, lease_id and plast of execution id.
func parseExecView(id string, v []any) (execView, error) {
	x := execView{ver: str(v, 0)}
	if x.ver == "-" {
		return x, nil
	}
	x.state = &driver.ExecutionState{ID: id, State: str(v, 1), LeaseID: str(v, 2)}
	if str(v, 3) != "" {
		var err error
		if x.plast, err = num(v, 3); err != nil {
			return execView{}, err
		}
	}
	return x, nil
}

// forgets reports whether a create_waitpoint or suspend at now forgets
// the execution first (driver.ForgetsExpiredPending).
func (x execView) forgets(now int64) bool {
	return x.state != nil && driver.ForgetsExpiredPending(x.state.State, x.plast, now)
}

// suspendPlan is a suspend decided on what suspend_read saw: the
// arguments at now, the execution's version, whether to forget it first,
// the pending waitpoints found (CheckPendingUse passed) and their
// buffered signals in delivery order.
type suspendPlan struct {
	args    contracts.SuspendArgs
	now     int64
	ver     string
	forget  bool
	found   map[string]*driver.PendingWaitpoint
	signals []contracts.Signal
}

// write plans the suspension with driver.NewSuspensionUsing under current
// and returns the outcome (driver.AlreadySatisfied when the pending
// waitpoints' signals satisfy the condition, driver.PendingSatisfied) with
// the ARGV of suspend_write: the suspension's counters start from what its
// pending waitpoints bring (driver.PendingBudget).
func (pl suspendPlan) write(current driver.KidRecord) (contracts.SuspendOutcome, []any, error) {
	args := pl.args
	out := driver.NewSuspensionUsing(args, current, pl.found, pl.now)
	result, satisfied := out, driver.PendingSatisfied(args, pl.found)
	if satisfied {
		result = driver.AlreadySatisfied(out, pl.signals)
	}
	var stored []byte
	if args.IdempotencyKey != "" {
		var err error
		if stored, err = driver.StoredSuspendOutcome(result); err != nil {
			return contracts.SuspendOutcome{}, nil, contracts.ErrInternal.With("suspend: the outcome does not encode").Wrapping(err)
		}
	}
	timeout := ""
	if out.TimeoutAtMs != nil {
		timeout = formatInt(*out.TimeoutAtMs)
	}
	signals, payloadBytes, signaled := driver.PendingBudget(args, pl.found)
	need := conditionNeed(args.Condition, len(args.Waitpoints))
	argv := []any{args.ExecutionID, current.Kid, args.IdempotencyKey, args.Fingerprint(), string(stored), pl.ver,
		formatInt(pl.now), timeout, args.Condition, out.SuspensionID, flag(pl.forget), flag(satisfied),
		strconv.Itoa(need), strconv.Itoa(need - signaled), strconv.Itoa(signals), formatInt(payloadBytes),
		tagsArg(out.Tags), strconv.Itoa(len(out.Waitpoints))}
	for i, w := range out.Waitpoints {
		argv = append(argv, w.WaitpointID, w.WaitpointKey, tokenDigest(w.Token), flag(args.Waitpoints[i].Pending != ""))
	}
	return result, argv, nil
}

// conditionNeed is how many of a suspension's m waitpoints must hold a
// signal for condition to hold: the least n that driver.ConditionHolds
// accepts (m+1, never, when none does; validation prevents it). The
// scripts compare counts with it (docs/spec.md §8.2).
func conditionNeed(condition string, m int) int {
	for n := 0; n <= m; n++ {
		if driver.ConditionHolds(condition, n, m) {
			return n
		}
	}
	return m + 1
}

// flag is a boolean as the scripts read it.
func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// openCurrent opens the stored secret of the partition's current kid, as
// a read script returned it, for signing.
func (b *Backend) openCurrent(p int, kid, secretHex string) (driver.KidRecord, error) {
	stored, err := hex.DecodeString(secretHex)
	if err != nil {
		return driver.KidRecord{}, interpretError(errMalformedReply)
	}
	secret, err := b.keyring().Open(kid, p, stored)
	if err != nil {
		return driver.KidRecord{}, err
	}
	return driver.KidRecord{Kid: kid, Secret: secret}, nil
}

// replayKeys decodes what suspend_read read of the kid that signed a
// record's tokens (v[4] the kid, v[5] its stored secret, empty when
// unknown, v[6] its expires_at_ms, empty when current) into a keystore
// holding that kid alone, its secret opened with r unless it is past its
// grace at now (docs/spec.md §3: a replay opens the kid only while it
// verifies). An already_satisfied record has no token and no kid.
func replayKeys(r *kek.Keyring, p int, now int64, current string, v []any) (replayKids, error) {
	kid, secretHex, exp := str(v, 4), str(v, 5), str(v, 6)
	rk := replayKids{kid: kid}
	if secretHex == "" {
		return rk, nil // collected (or a record without waitpoints)
	}
	rec := driver.KidRecord{Kid: kid}
	var err error
	if rec.Secret, err = hex.DecodeString(secretHex); err != nil {
		return rk, interpretError(errMalformedReply)
	}
	if kid != current || exp != "" {
		x, err := strconv.ParseInt(exp, 10, 64)
		if err != nil {
			return rk, interpretError(errMalformedReply)
		}
		rec.ExpiresAtMs = &x
	}
	if err := openRecord(r, p, &rec, now); err != nil {
		return rk, err
	}
	if rec.ExpiresAtMs == nil {
		rk.keys.Current = &rec
	} else {
		rk.keys.Verifying = []driver.KidRecord{rec}
	}
	return rk, nil
}

// replayKids is the keystore a replay signs with: the record's kid as
// suspend_read found it, and its record (if still known) in keys.
type replayKids struct {
	kid  string
	keys driver.PartitionKeys
}

// replaySuspend answers a suspend whose idempotency record exists
// (driver.CheckSuspendReplay): for the same fingerprint, the stored
// outcome with its tokens signed again (driver.ReplaySuspendOutcome: the
// same bytes as the first answer, or suspend_replay_expired once their kid
// no longer verifies at now), else idempotency_mismatch. A record written
// before tokens stopped being stored holds whole tokens and replays alike.
func replaySuspend(rec string, args contracts.SuspendArgs, rk replayKids, now int64) (contracts.SuspendOutcome, error) {
	fp := args.Fingerprint()
	if len(rec) < len(fp) {
		return contracts.SuspendOutcome{}, interpretError(errMalformedReply)
	}
	if err := driver.CheckSuspendReplay(rec[:len(fp)], args); err != nil {
		return contracts.SuspendOutcome{}, err
	}
	stored := []byte(rec[len(fp):])
	if kid, err := driver.StoredOutcomeKid(stored); err != nil || kid != rk.kid {
		// suspend_read looked up another kid than the record's: not a record of this driver.
		return contracts.SuspendOutcome{}, interpretError(errMalformedReply)
	}
	return driver.ReplaySuspendOutcome(stored, rk.keys, now)
}

// tokenHash is SHA-256 of a token as lowercase hex. suspend and
// create_waitpoint store it with each waitpoint they hand a token out for
// (h; raw bytes in an inline waitpoint, tokenDigest) and deliver compares
// it with the presented token's, so that the token handed out last is
// accepted in one round trip; the store never holds a token or its MAC.
// Its first 16 hex digits are driver.TokenFingerprint of the token, which
// get_waitpoint shows.
func tokenHash(token string) string { return hex.EncodeToString([]byte(tokenDigest(token))) }

// tokenDigest is SHA-256 of a token as its 32 raw bytes, which suspend
// and deliver pass to their scripts: the scripts compare and store raw
// bytes, and converting from hex in Lua cost a delivery a quarter of its
// time on the server's thread.
func tokenDigest(token string) string {
	h := sha256.Sum256([]byte(token))
	return string(h[:])
}

// fingerprintOf is driver.TokenFingerprint of the token whose tokenHash
// is h, "" for none (a waitpoint stored before hashes were kept).
func fingerprintOf(h string) string {
	if len(h) < 16 {
		return ""
	}
	return h[:16]
}
