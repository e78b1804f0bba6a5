package valkey

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/redis/go-redis/v9"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

// maxAttempts bounds the optimistic retries of suspend, create_waitpoint
// and deliver_signal (the keystore, the execution or the waitpoint changed
// between their two steps) and of claim (another worker took the
// candidate).
const maxAttempts = 16

// errRetriesExhausted is contention / serialization_retry_exhausted.
func errRetriesExhausted(op string) error {
	return contracts.ErrSerializationRetryExhausted.With("%s: the store kept changing under %d attempts; retry", op, maxAttempts)
}

// member is the index member of an execution, as ff_member builds it.
func member(ms int64, id string) string {
	s := strconv.FormatInt(ms, 10)
	return strings.Repeat("0", 20-len(s)) + s + ":" + id
}

// DeliverSignal records a signal. For the token suspend issued it takes one
// script call (deliver.lua: the token's SHA-256 matches the one stored with
// the waitpoint, and the kid still verifies). Any other token takes the
// slow path: deliver_read fetches the token kid's record, the waitpoint and
// the clock, the token is checked here (steps 1–2 of docs/spec.md §5, with
// driver.CheckToken in constant time), and deliver_write re-checks the
// kid and the waitpoint and decides steps 3–5 atomically at its own clock.
// Concurrent deliveries with one idempotency key: exactly one is accepted,
// the others are duplicates naming its signal_id.
func (b *Backend) DeliverSignal(ctx context.Context, args contracts.DeliverSignalArgs) (contracts.DeliverSignalOutcome, error) {
	t, err := contracts.ParseToken("token", args.Token)
	if err != nil {
		return contracts.DeliverSignalOutcome{}, err
	}
	p := driver.PartitionOf(args.ExecutionID, b.parts)
	signalID := driver.NewID()
	argv := deliverArgv(t.Kid, signalID, args)
	v, err := b.run(ctx, scriptDeliver, p, append(argv, tokenDigest(args.Token))...)
	if err != nil {
		return contracts.DeliverSignalOutcome{}, err
	}
	if out, ok := parseDeliver(v, signalID); ok {
		return out, nil
	}
	for range maxAttempts {
		if err := b.authorize(ctx, p, t, args); err != nil {
			return contracts.DeliverSignalOutcome{}, err
		}
		v, err := b.run(ctx, scriptDeliverWrite, p, argv...)
		if err != nil {
			return contracts.DeliverSignalOutcome{}, err
		}
		if out, ok := parseDeliver(v, signalID); ok {
			return out, nil
		}
		// "retry": the kid expired or the execution completed in between.
	}
	return contracts.DeliverSignalOutcome{}, errRetriesExhausted("deliver_signal")
}

// deliverArgv is the ARGV of deliver_write, with room for the token's
// SHA-256 that deliver adds: the signal's record around its waitpoint_key,
// which the script reads, and the budgets args.Limits.OrDefaults() with
// the payload's length, which ff_record checks (docs/spec.md §8.3).
func deliverArgv(kid, signalID string, args contracts.DeliverSignalArgs) []any {
	budgets := defaultBudgetArgs.args
	if l := args.Limits.OrDefaults(); l != defaultBudgetArgs.limits {
		last := lastBudgetArgs.Load()
		if last == nil || last.limits != l {
			last = newBudgetArgs(l)
			lastBudgetArgs.Store(last)
		}
		budgets = last.args
	}
	var size any = "0"
	if len(args.Payload) > 0 {
		size = strconv.Itoa(len(args.Payload))
	}
	argv := make([]any, 0, 12)
	return append(argv, kid, args.ExecutionID, args.WaitpointID, args.IdempotencyKey, signalID,
		encodeFields(signalID, args.WaitpointID), encodeFields(args.Name, string(args.Payload), args.IdempotencyKey),
		budgets[0], budgets[1], budgets[2], size)
}

// budgetArgs are the ARGV of the budgets limits, formatted once: signals
// per waitpoint, signals per suspension and payload bytes per suspension.
type budgetArgs struct {
	limits contracts.SignalLimits
	args   [3]any
}

func newBudgetArgs(l contracts.SignalLimits) *budgetArgs {
	return &budgetArgs{l, [3]any{strconv.Itoa(l.PerWaitpoint), strconv.Itoa(l.PerSuspension), formatInt(l.PayloadBytes)}}
}

// The default budgets' ARGV, and the last other budgets' (an Engine
// always passes the same ones).
var (
	defaultBudgetArgs = newBudgetArgs(contracts.DefaultSignalLimits())
	lastBudgetArgs    atomic.Pointer[budgetArgs]
)

// parseDeliver decodes an accepted or duplicate reply; ok is false for
// "slow" and "retry".
func parseDeliver(v []any, signalID string) (contracts.DeliverSignalOutcome, bool) {
	switch str(v, 0) {
	case contracts.OutcomeAccepted:
		return contracts.DeliverSignalOutcome{Outcome: contracts.OutcomeAccepted, SignalID: signalID, Resumed: str(v, 1) == "1"}, true
	case contracts.OutcomeDuplicate:
		return contracts.DeliverSignalOutcome{Outcome: contracts.OutcomeDuplicate, SignalID: str(v, 1)}, true
	}
	return contracts.DeliverSignalOutcome{}, false
}

// authorize runs checks 1 and 2 of deliver_signal on the slow path with
// contracts.AuthorizeToken, from one deliver_read call.
func (b *Backend) authorize(ctx context.Context, p int, t contracts.Token, args contracts.DeliverSignalArgs) error {
	v, err := b.run(ctx, scriptDeliverRead, p, t.Kid, args.ExecutionID, args.WaitpointID)
	if err != nil {
		return err
	}
	now, err := num(v, 0)
	if err != nil {
		return interpretError(err)
	}
	var rec *driver.KidRecord
	if str(v, 2) == "1" {
		rec = &driver.KidRecord{Kid: t.Kid, Revoked: str(v, 8) == "1"} // revoked: no secret
		if rec.Secret, err = hex.DecodeString(str(v, 4)); err != nil || rec.Revoked && len(rec.Secret) > 0 {
			return interpretError(errMalformedReply)
		}
		if len(rec.Secret) == 0 {
			rec.Secret = nil
		}
		if e := str(v, 3); e != "" {
			exp, err := strconv.ParseInt(e, 10, 64)
			if err != nil {
				return interpretError(errMalformedReply)
			}
			rec.ExpiresAtMs = &exp
		}
		if err := openRecord(b.keyring(), p, rec, now); err != nil {
			return err
		}
	}
	var w *driver.WaitpointRef
	if str(v, 5) == "1" {
		created, err := num(v, 7)
		if err != nil {
			return interpretError(err)
		}
		w = &driver.WaitpointRef{ExecutionID: args.ExecutionID, WaitpointID: args.WaitpointID, WaitpointKey: str(v, 6), CreatedAtMs: created}
	}
	return driver.AuthorizeToken(t, args.ExecutionID, str(v, 1) != "", rec, w, now)
}

// ObserveSignals returns a page of at most args.Limit signals of the
// execution's latest suspension in delivery order, from the position
// driver.ObserveStart gives (a cursor of another suspension: an empty last
// page), in one script call that reads limit+1 signals by position
// (LRANGE), never the whole list (driver.PageSignals).
func (b *Backend) ObserveSignals(ctx context.Context, args contracts.ObserveSignalsArgs) (contracts.ObserveSignalsResult, error) {
	limit := args.Limit
	if limit <= 0 || limit > contracts.MaxObserveLimit {
		limit = contracts.MaxObserveLimit // the Engine always sets it
	}
	var c contracts.SignalCursor
	if args.Cursor != "" {
		var err error
		if c, err = contracts.DecodeSignalCursor(args.Cursor); err != nil {
			return contracts.ObserveSignalsResult{}, err
		}
	}
	stop := c.Position + int64(limit) // limit+1 signals: whether another page follows
	if stop < c.Position {
		stop = math.MaxInt64
	}
	v, err := b.run(ctx, scriptObserve, driver.PartitionOf(args.ExecutionID, b.parts), args.ExecutionID,
		c.SuspensionID, formatInt(c.Position), formatInt(stop))
	if err != nil {
		return contracts.ObserveSignalsResult{}, err
	}
	if len(v) == 0 {
		return contracts.ObserveSignalsResult{}, driver.ExecutionNotFound(args.ExecutionID)
	}
	sid := str(v, 0)
	start, ok := driver.ObserveStart(args, sid)
	if !ok {
		return driver.PageSignals(args.ExecutionID, sid, nil, 0, limit), nil
	}
	signals, err := decodeSignals(v[1:])
	if err != nil {
		return contracts.ObserveSignalsResult{}, err
	}
	return driver.PageSignals(args.ExecutionID, sid, signals, start, limit), nil
}

// ListSuspended answers a page of list_suspended (docs/spec.md §5.4). On
// a standalone server one script call reads the whole page from the
// global list indexes (listIndex, list_all.go; a page of more than
// listIndexChunk rows takes one call per listIndexChunk rows), whatever
// the partition count; while those are not complete (a store written
// before them) it reads every partition (listAll) and backfills them in
// the background (fillListsLater). On a cluster, whose partitions are
// other slots, listPartitions reads it per partition.
func (b *Backend) ListSuspended(ctx context.Context, args contracts.ListSuspendedArgs) (contracts.ListSuspendedResult, error) {
	after := ""
	if args.Cursor != "" {
		c, err := contracts.DecodeCursor(args.Cursor)
		if err != nil {
			return contracts.ListSuspendedResult{}, err
		}
		after = member(c.SuspendedAtMs, c.ExecutionID)
	}
	if b.hint != "" {
		l, ok, err := b.listIndex(ctx, after, args.Limit, args.Tag, listIndexChunk)
		if ok || err != nil {
			return l, err
		}
		b.fillListsLater()
		return b.listAll(ctx, after, args.Limit, args.Tag, listAllChunk)
	}
	return b.listPartitions(ctx, after, args)
}

// listPartitions answers a page of list_suspended after the member after
// in two steps, each one pipeline (one round trip per node), so that no
// partition reads more than the page can use. list_peek returns the index
// members (suspended_at_ms and execution_id, no row) of at most limit+1
// executions after the cursor from each partition (listCandidates, which
// asks a first wave of partitions and then the others with a bound), and
// the limit+1 first of all are merged here; list_rows then reads the rows
// of only those, on their partitions. A winner that left the index in
// between (it resumed, was claimed or cancelled, or completed) is not
// listed, and the next candidates after the last one are fetched in its
// place, so a page still holds limit rows and next_cursor still says
// whether more follow: paging visits every execution that stays suspended
// throughout exactly once, in order. With a tag both steps read the
// partition's index of that tag (docs/spec.md §8.6), kept by the scripts
// that add and remove executions from the suspended index, so a filtered
// page reads only executions that carry the tag.
func (b *Backend) listPartitions(ctx context.Context, after string, args contracts.ListSuspendedArgs) (contracts.ListSuspendedResult, error) {
	want := args.Limit + 1 // one more than the page: whether another follows
	var rows []contracts.SuspendedExecution
	for range maxAttempts {
		need := want - len(rows)
		candidates, err := b.listCandidates(ctx, after, need, args.Tag)
		if err != nil {
			return contracts.ListSuspendedResult{}, err
		}
		found, err := b.listRows(ctx, candidates, args.Tag)
		if err != nil {
			return contracts.ListSuspendedResult{}, err
		}
		rows = append(rows, found...)
		if len(rows) >= want || len(candidates) < need {
			return driver.PageSuspended(rows, args.Limit), nil
		}
		// Some left the index between the steps: fetch their replacements,
		// which all come after the candidates already read.
		after = candidates[len(candidates)-1].member
	}
	return contracts.ListSuspendedResult{}, errRetriesExhausted("list_suspended")
}

// listCandidate is an index member returned by list_peek, on its partition.
type listCandidate struct {
	member    string
	partition int
}

// listFirstWave is how many partitions listCandidates asks without a
// bound: about the square root of P, which keeps both waves' replies
// near 2·sqrt(P)·n members whatever the spread of the executions.
func listFirstWave(parts int) int {
	w := 1
	for w*w < parts {
		w++
	}
	return w
}

// listCandidates returns the first n index members strictly after the
// member after over every partition, in order, each with its partition.
// It asks a first wave of partitions (listFirstWave) for their first n in
// one pipeline, then the others in a second pipeline with the n-th
// member found so far as an exclusive bound, when it found n: a member at
// or past it cannot be among the first n.
func (b *Backend) listCandidates(ctx context.Context, after string, n int, tag string) ([]listCandidate, error) {
	count := strconv.Itoa(n)
	all := b.allPartitions()
	first := listFirstWave(b.parts)
	var out []listCandidate
	for _, wave := range [][]int{all[:first], all[first:]} {
		if len(wave) == 0 {
			continue
		}
		bound := ""
		if len(out) >= n {
			bound = out[n-1].member
		}
		replies, err := b.runAll(ctx, scriptListPeek, wave, func(int) []any { return []any{after, count, tag, bound} })
		if err != nil {
			return nil, err
		}
		for i, r := range replies {
			if r.err != nil {
				return nil, r.err
			}
			for j := range r.values {
				m := str(r.values, j)
				if len(m) < 22 {
					return nil, interpretError(errMalformedReply)
				}
				out = append(out, listCandidate{member: m, partition: wave[i]})
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i].member < out[j].member })
		if len(out) > n {
			out = out[:n]
		}
	}
	return out, nil
}

// listRows reads the rows of candidates with list_rows, one script call
// per partition in one pipeline, and returns them in the candidates'
// order, without those that left the index since list_peek.
func (b *Backend) listRows(ctx context.Context, candidates []listCandidate, tag string) ([]contracts.SuspendedExecution, error) {
	if len(candidates) == 0 {
		return nil, nil
	}
	byPartition := map[int][]any{}
	var partitions []int
	for _, c := range candidates {
		if _, ok := byPartition[c.partition]; !ok {
			partitions = append(partitions, c.partition)
			byPartition[c.partition] = []any{tag}
		}
		byPartition[c.partition] = append(byPartition[c.partition], c.member)
	}
	replies, err := b.runAll(ctx, scriptListRows, partitions, func(p int) []any { return byPartition[p] })
	if err != nil {
		return nil, err
	}
	rows := make(map[string]*contracts.SuspendedExecution, len(candidates)) // by member
	for i, r := range replies {
		if r.err != nil {
			return nil, r.err
		}
		page, err := parseListRows(r.values)
		asked := byPartition[partitions[i]][1:]
		if err == nil && len(page) != len(asked) {
			err = interpretError(errMalformedReply)
		}
		if err != nil {
			return nil, err
		}
		for j, x := range page {
			rows[asked[j].(string)] = x
		}
	}
	out := make([]contracts.SuspendedExecution, 0, len(candidates))
	for _, c := range candidates {
		if x := rows[c.member]; x != nil {
			out = append(out, *x)
		}
	}
	return out, nil
}

// listRowLen is how many values each row of a list_rows reply holds.
const listRowLen = 6

// parseListRows decodes a list_rows reply: one row per member asked, nil
// for a member that left the index (an empty execution_id).
func parseListRows(v []any) ([]*contracts.SuspendedExecution, error) {
	if len(v)%listRowLen != 0 {
		return nil, interpretError(errMalformedReply)
	}
	out := make([]*contracts.SuspendedExecution, 0, len(v)/listRowLen)
	for i := 0; i < len(v); i += listRowLen {
		if str(v, i) == "" {
			out = append(out, nil)
			continue
		}
		e, err := decodeListRow(v, i, str(v, i))
		if err != nil {
			return nil, err
		}
		out = append(out, &e)
	}
	return out, nil
}

// decodeListRow decodes the row of execution id at v[i:i+listRowLen]
// (list_rows and list_all put the same fields at i+1 … i+5: suspension_id,
// suspended_at_ms, timeout_at_ms or empty, waitpoints, space-separated tags).
func decodeListRow(v []any, i int, id string) (contracts.SuspendedExecution, error) {
	sat, err1 := num(v, i+2)
	nwp, err2 := num(v, i+4)
	if err := errors.Join(err1, err2); err != nil {
		return contracts.SuspendedExecution{}, interpretError(err)
	}
	e := contracts.SuspendedExecution{ExecutionID: id, SuspensionID: str(v, i+1), SuspendedAtMs: sat,
		Waitpoints: int(nwp), Tags: strings.Fields(str(v, i+5))}
	if str(v, i+3) != "" {
		tat, err := num(v, i+3)
		if err != nil {
			return contracts.SuspendedExecution{}, interpretError(err)
		}
		e.TimeoutAtMs = &tat
	}
	return e, nil
}

// ClaimResumedExecution leases the oldest claimable execution. One pipeline
// (one round trip per node) asks every partition for its oldest candidate,
// moving due timeouts and leases to the ready index on the way; then one
// script call on the partition holding the oldest candidate claims
// atomically there. If other workers emptied that partition first, the next
// oldest candidate's partition is tried, and when every candidate is gone,
// the partitions are asked again. With one partition there is nothing to
// compare: the claim script alone decides, in one round trip. On a
// standalone server claim_hinted promotes the due timers the claim hint
// names, reads the claim heads and claims on the partition of the oldest,
// all in one call (a pipeline follows only when the hint is incomplete or
// names very many partitions with due timers).
func (b *Backend) ClaimResumedExecution(ctx context.Context, args contracts.ClaimArgs) (contracts.ClaimOutcome, error) {
	for range maxAttempts {
		var candidates []int
		var err error
		if b.hint != "" && b.parts > 1 {
			var out contracts.ClaimOutcome
			var done bool
			out, candidates, done, err = b.claimHinted(ctx, args)
			if done || err != nil {
				return out, err
			}
			if candidates == nil {
				continue // due timers promoted: ask claim_hinted again
			}
		} else {
			candidates, err = b.claimCandidates(ctx, b.allPartitions(), false)
		}
		if err != nil || len(candidates) == 0 {
			return contracts.ClaimOutcome{Outcome: contracts.OutcomeNone}, err
		}
		for _, p := range candidates {
			leaseID := driver.NewID()
			v, err := b.run(ctx, scriptClaim, p, leaseID, formatInt(args.LeaseMs))
			if err != nil {
				return contracts.ClaimOutcome{}, err
			}
			if str(v, 0) == contracts.OutcomeClaimed {
				c, err := parseClaim(v)
				return c.out, err
			}
		}
		if b.parts == 1 {
			return contracts.ClaimOutcome{Outcome: contracts.OutcomeNone}, nil
		}
	}
	return contracts.ClaimOutcome{}, errRetriesExhausted("claim_resumed_execution")
}

// claimHinted runs claim_hinted. done reports an answer (claimed or none).
// Otherwise it returns the candidates to claim from, oldest first, when the
// hint was not complete (every partition's, none when nothing was
// claimable: then done), or no candidates (nil) when it promoted the due
// timers of the partitions the hint named: claim_hinted is to be asked
// again.
func (b *Backend) claimHinted(ctx context.Context, args contracts.ClaimArgs) (out contracts.ClaimOutcome, candidates []int, done bool, err error) {
	leaseID := driver.NewID()
	// Called on partition 0: its store marker is checked by value, and
	// every partition the script asks must have one (claim_hinted.lua).
	v, err := b.run(ctx, scriptClaimHinted, 0, leaseID, formatInt(args.LeaseMs))
	if err != nil {
		return out, nil, false, err
	}
	switch str(v, 0) {
	case contracts.OutcomeClaimed:
		c, err := parseClaim(v)
		return c.out, nil, true, err
	case contracts.OutcomeNone:
		return contracts.ClaimOutcome{Outcome: contracts.OutcomeNone}, nil, true, nil
	case "hint":
		return out, nil, false, b.promoteHinted(ctx, v[1:])
	case "full":
		candidates, err = b.claimCandidates(ctx, b.allPartitions(), true)
		if err == nil && len(candidates) == 0 {
			return contracts.ClaimOutcome{Outcome: contracts.OutcomeNone}, nil, true, nil
		}
		return out, candidates, false, err
	}
	return out, nil, false, interpretError(errMalformedReply)
}

// promoteHinted moves the due timers of the partitions a {'hint', ...}
// reply of claim_hinted names to their ready indexes, one claim_peek per
// partition in one pipeline (each sets its partition's hint and claim
// head), so that the next claim_hinted compares the claim heads alone.
func (b *Backend) promoteHinted(ctx context.Context, v []any) error {
	named, err := hintedPartitions(v, b.parts)
	if err != nil {
		return err
	}
	replies, err := b.runAll(ctx, scriptClaimPeek, named, func(int) []any { return nil })
	if err != nil {
		return err
	}
	for _, r := range replies {
		if r.err != nil {
			return r.err
		}
	}
	return nil
}

// claimCandidates returns those of partitions that hold a ready execution,
// oldest candidate first. With one partition it returns partition 0
// without asking. complete marks the claim hint complete afterwards: every
// partition was asked, and claim_peek sets each one's hint.
func (b *Backend) claimCandidates(ctx context.Context, partitions []int, complete bool) ([]int, error) {
	if b.parts == 1 {
		return []int{0}, nil
	}
	replies, err := b.runAll(ctx, scriptClaimPeek, partitions, func(int) []any { return nil })
	if err != nil {
		return nil, err
	}
	for _, r := range replies {
		if r.err != nil {
			return nil, r.err
		}
	}
	if complete {
		if err := b.completeHint(ctx); err != nil {
			return nil, err
		}
	}
	type candidate struct {
		partition int
		member    string
	}
	var cs []candidate
	for i, r := range replies {
		if m := str(r.values, 0); m != "" {
			cs = append(cs, candidate{partitions[i], m})
		}
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].member < cs[j].member })
	out := make([]int, len(cs))
	for i, c := range cs {
		out[i] = c.partition
	}
	return out, nil
}

// completeHint marks the claim hint complete, once every partition was
// asked and claim_peek set each one's hint and claim head: from then on
// the scripts keep them (see ff_hint in lua/prelude.lua).
func (b *Backend) completeHint(ctx context.Context) error {
	if err := b.client.ZAdd(ctx, b.hint, redis.Z{Score: math.Inf(1), Member: "complete"}).Err(); err != nil {
		return interpretError(err)
	}
	return nil
}

// hintedPartitions decodes the partition numbers of a claim_hint reply.
func hintedPartitions(v []any, parts int) ([]int, error) {
	out := make([]int, len(v))
	for i := range v {
		p, err := num(v, i)
		if err != nil || p < 0 || p >= int64(parts) {
			return nil, interpretError(errMalformedReply)
		}
		out[i] = int(p)
	}
	return out, nil
}

// claimed is one claim of a script reply with the execution's index
// member, which orders the claims of several partitions.
type claimed struct {
	member string
	out    contracts.ClaimOutcome
}

// claimReplyLen is how many values a claim reply holds before its signal
// records: 'claimed', execution_id, suspension_id, reason,
// lease_expires_at_ms, member, lease_id (claim_lib.lua).
const claimReplyLen = 7

// parseClaim decodes a claim reply.
func parseClaim(v []any) (claimed, error) {
	if len(v) < claimReplyLen || str(v, 0) != contracts.OutcomeClaimed {
		return claimed{}, interpretError(errMalformedReply)
	}
	lexp, err := num(v, 4)
	if err != nil {
		return claimed{}, interpretError(err)
	}
	signals, err := decodeSignals(v[claimReplyLen:])
	if err != nil {
		return claimed{}, err
	}
	return claimed{member: str(v, 5), out: contracts.ClaimOutcome{
		Outcome: contracts.OutcomeClaimed, ExecutionID: str(v, 1), SuspensionID: str(v, 2), Reason: str(v, 3),
		LeaseID: str(v, 6), LeaseExpiresAtMs: lexp, Signals: signals,
	}}, nil
}

// CompleteExecution forgets a claimed execution and everything recorded for
// it, in one script call.
func (b *Backend) CompleteExecution(ctx context.Context, args contracts.CompleteArgs) (contracts.CompleteOutcome, error) {
	_, err := b.run(ctx, scriptComplete, driver.PartitionOf(args.ExecutionID, b.parts), args.ExecutionID, args.LeaseID, driver.NewID())
	if err != nil {
		return contracts.CompleteOutcome{}, err
	}
	return contracts.CompleteOutcome{Outcome: contracts.OutcomeCompleted, ExecutionID: args.ExecutionID}, nil
}

// encodeFields encodes byte strings as "<len>:<bytes>" each, concatenated:
// binary-safe (payloads and idempotency keys may hold any bytes).
func encodeFields(fields ...string) string {
	var sb strings.Builder
	for _, f := range fields {
		sb.WriteString(strconv.Itoa(len(f)))
		sb.WriteByte(':')
		sb.WriteString(f)
	}
	return sb.String()
}

// decodeFields reverses encodeFields, expecting n fields.
func decodeFields(s string, n int) ([]string, error) {
	out := make([]string, 0, n)
	for range n {
		lenText, rest, ok := strings.Cut(s, ":")
		l, err := strconv.Atoi(lenText)
		if !ok || err != nil || l < 0 || l > len(rest) {
			return nil, errMalformedReply
		}
		out = append(out, rest[:l])
		s = rest[l:]
	}
	if s != "" {
		return nil, errMalformedReply
	}
	return out, nil
}

// decodeSignals decodes stored signal records "<delivered_at_ms>|<fields>".
func decodeSignals(v []any) ([]contracts.Signal, error) {
	out := make([]contracts.Signal, 0, len(v))
	for i := range v {
		at, rest, ok := strings.Cut(str(v, i), "|")
		ms, err := strconv.ParseInt(at, 10, 64)
		if !ok || err != nil {
			return nil, interpretError(errMalformedReply)
		}
		f, err := decodeFields(rest, 6)
		if err != nil {
			return nil, interpretError(err)
		}
		s := contracts.Signal{SignalID: f[0], WaitpointID: f[1], WaitpointKey: f[2], Name: f[3], IdempotencyKey: f[5], DeliveredAtMs: ms}
		if f[4] != "" {
			s.Payload = json.RawMessage(f[4])
		}
		out = append(out, s)
	}
	return out, nil
}
