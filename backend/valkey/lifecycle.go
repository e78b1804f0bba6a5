package valkey

import (
	"context"
	"strings"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

// Version 2 of the waitpoint lifecycle (docs/spec.md §8.1, §8.2,
// §8.4–§8.6). Keys it adds to an execution E's partition: xp:E (its pending
// waitpoints no suspend used yet, scored by expires_at_ms), pb:<waitpoint_id>
// (signals buffered on a pending waitpoint, each behind E's delivery
// sequence number, seq in x:E) and idx:tag:<tag> (the suspended index of
// one tag). x:E also keeps ver (the id of the call that last wrote it:
// two-step writes compare it, with the state, lease and suspension, to
// what their read saw, ff_exec_view in lua/prelude.lua), plast (the latest expires_at_ms of its
// pending waitpoints), tags, need (how many waitpoints must hold a signal)
// and reason "cancelled" after cancel; a waitpoint keeps x (pending expiry),
// nb (payload bytes), t (its suspension's timeout_at_ms) and tags.
var _ driver.Lifecycle = (*Backend)(nil)

// CreateWaitpoint opens a pending waitpoint (docs/spec.md §8.1) in two
// script calls on the execution's partition, as suspend does:
// create_read reads the clock, the current kid with its secret, the
// execution and how many live pending waitpoints it holds; the driver kit
// decides (driver.ForgetsExpiredPending, driver.CheckCreateWaitpoint) and
// the token is signed here (driver.NewPendingWaitpoint); create_write
// writes atomically provided the kid is still current and the execution
// unchanged, else both steps run again. The store keeps the token's
// SHA-256, never the token. An execution the kit forgets first is
// forgotten by create_write; a refused call forgets nothing.
func (b *Backend) CreateWaitpoint(ctx context.Context, args contracts.CreateWaitpointArgs) (contracts.CreateWaitpointOutcome, error) {
	p := driver.PartitionOf(args.ExecutionID, b.parts)
	for range maxAttempts {
		v, err := b.run(ctx, scriptCreateRead, p, args.ExecutionID)
		if err != nil {
			return contracts.CreateWaitpointOutcome{}, err
		}
		d := b.decideCreate(args, p, v)
		if d.err != nil {
			return contracts.CreateWaitpointOutcome{}, d.err
		}
		w, err := b.run(ctx, scriptCreateWrite, p, d.argv...)
		if err != nil {
			return contracts.CreateWaitpointOutcome{}, err
		}
		if str(w, 0) == "ok" {
			return d.out, nil
		}
		// "retry": the current kid or the execution changed in between.
	}
	return contracts.CreateWaitpointOutcome{}, errRetriesExhausted("create_waitpoint")
}

// decideCreate decides create_waitpoint on a create_read reply, in the
// order of docs/spec.md §8.1: no current kid; an execution in state none
// whose pending waitpoints all expired is forgotten first
// (driver.ForgetsExpiredPending); driver.CheckCreateWaitpoint.
func (b *Backend) decideCreate(args contracts.CreateWaitpointArgs, p int, v []any) decision[contracts.CreateWaitpointOutcome] {
	type d = decision[contracts.CreateWaitpointOutcome]
	if len(v) != 8 {
		return d{err: interpretError(errMalformedReply)}
	}
	now, err1 := num(v, 0)
	live, err2 := num(v, 7)
	x, err3 := parseExecView(args.ExecutionID, v[3:7])
	for _, err := range []error{err1, err2, err3} {
		if err != nil {
			return d{err: interpretError(err)}
		}
	}
	kid := str(v, 1)
	if kid == "" {
		return d{err: driver.NotInitialized()}
	}
	forget := x.forgets(now)
	if forget {
		x.state, live = nil, 0
	}
	if err := driver.CheckCreateWaitpoint(x.state, args, int(live)); err != nil {
		return refuse[contracts.CreateWaitpointOutcome](err)
	}
	current, err := b.openCurrent(p, kid, str(v, 2))
	if err != nil {
		return refuse[contracts.CreateWaitpointOutcome](err)
	}
	out := driver.NewPendingWaitpoint(args, current, now)
	argv := []any{args.ExecutionID, kid, x.ver, flag(forget), out.WaitpointID, out.WaitpointKey,
		formatInt(out.CreatedAtMs), formatInt(out.ExpiresAtMs), tokenHash(out.Token), tagsArg(out.Tags)}
	return d{out: out, argv: argv}
}

// GetWaitpoint describes a waitpoint of the execution (docs/spec.md §8.6)
// from one read script call, with driver.DescribeWaitpoint: its token
// fingerprint is the first 16 hex digits of the SHA-256 the store keeps,
// never the token.
func (b *Backend) GetWaitpoint(ctx context.Context, args contracts.GetWaitpointArgs) (contracts.WaitpointInfo, error) {
	v, err := b.run(ctx, scriptGetWaitpoint, driver.PartitionOf(args.ExecutionID, b.parts), args.ExecutionID, args.WaitpointID)
	if err != nil {
		return contracts.WaitpointInfo{}, err
	}
	now, err := num(v, 0)
	if err != nil {
		return contracts.WaitpointInfo{}, interpretError(err)
	}
	if str(v, 1) != args.ExecutionID { // none, or another execution's: one answer
		return contracts.WaitpointInfo{}, driver.WaitpointNotFound(args.ExecutionID, args.WaitpointID)
	}
	rec, err := parseWaitpointRecord(args, v)
	if err != nil {
		return contracts.WaitpointInfo{}, interpretError(err)
	}
	return driver.DescribeWaitpoint(rec, now), nil
}

// parseWaitpointRecord decodes a get_waitpoint reply of a waitpoint of
// args.ExecutionID.
func parseWaitpointRecord(args contracts.GetWaitpointArgs, v []any) (driver.WaitpointRecord, error) {
	if len(v) != 11 {
		return driver.WaitpointRecord{}, errMalformedReply
	}
	created, err1 := num(v, 3)
	signals, err2 := num(v, 6)
	if err1 != nil || err2 != nil {
		return driver.WaitpointRecord{}, errMalformedReply
	}
	rec := driver.WaitpointRecord{
		WaitpointRef: driver.WaitpointRef{ExecutionID: args.ExecutionID, WaitpointID: args.WaitpointID, WaitpointKey: str(v, 2), CreatedAtMs: created},
		Signals:      int(signals), TokenFingerprint: fingerprintOf(str(v, 7)), Tags: strings.Fields(str(v, 10)),
	}
	if str(v, 4) == "" { // no suspension uses it: pending
		exp, err := num(v, 8)
		if err != nil {
			return driver.WaitpointRecord{}, err
		}
		rec.Pending, rec.PendingExpiresAtMs = true, exp
		return rec, nil
	}
	rec.SuspensionClosed = str(v, 5) == "1"
	if str(v, 9) != "" {
		t, err := num(v, 9)
		if err != nil {
			return driver.WaitpointRecord{}, err
		}
		rec.TimeoutAtMs = &t
	}
	return rec, nil
}

// ExtendLease moves the lease of a claimed execution to now + lease_ms
// (docs/spec.md §8.4) in one script call (extend.lua), which applies the
// lease rules of driver.CheckLeaseHolder atomically at the server's clock.
func (b *Backend) ExtendLease(ctx context.Context, args contracts.ExtendLeaseArgs) (contracts.ExtendLeaseOutcome, error) {
	v, err := b.run(ctx, scriptExtend, driver.PartitionOf(args.ExecutionID, b.parts),
		args.ExecutionID, args.LeaseID, formatInt(args.LeaseMs), driver.NewID())
	if err != nil {
		return contracts.ExtendLeaseOutcome{}, err
	}
	lexp, err := num(v, 1)
	if err != nil || str(v, 0) != contracts.OutcomeExtended {
		return contracts.ExtendLeaseOutcome{}, interpretError(errMalformedReply)
	}
	return contracts.ExtendLeaseOutcome{Outcome: contracts.OutcomeExtended, ExecutionID: args.ExecutionID, LeaseExpiresAtMs: lexp}, nil
}

// ReleaseExecution gives a claimed execution back (docs/spec.md §8.4) in
// one script call (release.lua): the lease rules of driver.CheckLeaseHolder,
// then the lease driver.ReleasedLease gives, at the server's clock (its id
// is drawn here; its expiry, the kit's offset from now, the script adds to
// its clock), so the execution is claimable at once with its claim reason.
func (b *Backend) ReleaseExecution(ctx context.Context, args contracts.ReleaseArgs) (contracts.ReleaseOutcome, error) {
	leaseID, offset := driver.ReleasedLease(0) // at now = 0 the expiry is the offset from now
	_, err := b.run(ctx, scriptRelease, driver.PartitionOf(args.ExecutionID, b.parts),
		args.ExecutionID, args.LeaseID, leaseID, formatInt(offset), driver.NewID())
	if err != nil {
		return contracts.ReleaseOutcome{}, err
	}
	return contracts.ReleaseOutcome{Outcome: contracts.OutcomeReleased, ExecutionID: args.ExecutionID}, nil
}

// CancelSuspension closes the waitpoints of a suspended execution and makes
// it claimable with reason cancelled (docs/spec.md §8.5), in one script
// call (cancel.lua, which decides as driver.CheckCancel).
func (b *Backend) CancelSuspension(ctx context.Context, args contracts.CancelArgs) (contracts.CancelOutcome, error) {
	v, err := b.run(ctx, scriptCancel, driver.PartitionOf(args.ExecutionID, b.parts), args.ExecutionID, driver.NewID())
	if err != nil {
		return contracts.CancelOutcome{}, err
	}
	if str(v, 0) != contracts.OutcomeCancelled || str(v, 1) == "" {
		return contracts.CancelOutcome{}, interpretError(errMalformedReply)
	}
	return contracts.CancelOutcome{Outcome: contracts.OutcomeCancelled, ExecutionID: args.ExecutionID, SuspensionID: str(v, 1)}, nil
}

// tagsArg is tags as the scripts keep them: space-separated (a tag holds
// no space, contracts.ValidateTags); strings.Fields reads them back.
func tagsArg(tags []string) string { return strings.Join(tags, " ") }
