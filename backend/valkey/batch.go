package valkey

import (
	"context"
	"sort"
	"strconv"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

var _ driver.BatchClaimer = (*Backend)(nil)

// ClaimResumedExecutions leases up to args.Max claimable executions, oldest
// first, each exactly as ClaimResumedExecution would (its own lease_id,
// reason and signals; docs/spec.md §8.8). Round trips, for any Max:
//
//   - P = 1: one call of the claim script with Max lease ids, which claims
//     up to Max on the partition atomically;
//   - a standalone server: one claim_hinted call with Max lease ids, which
//     promotes the due timers the claim hint names, then claims, at one
//     clock, each time from the partition the first claim head names (the
//     one whose oldest candidate is the oldest of all), as successive
//     claims would; when the hint names very many partitions with due
//     timers, one pipeline promotes them first (claim_peek) and the call
//     is made again; when the hint is not complete, as on a cluster:
//   - a cluster: one pipeline asking every partition for its Max oldest
//     candidates (one round trip per node), then one pipeline of claim
//     calls on the partitions holding the Max oldest of all, each with as
//     many lease ids as it holds of them (one round trip per node).
//
// Each script call is atomic; the pipelined batch as a whole is not: when
// another worker took a candidate in between, or a candidate was not
// claimable after all, the partition's call claims its next oldest
// instead, or the missing claims are made by another round (up to
// maxAttempts rounds), so under contention such a batch may hold an
// execution a little younger than one it left. The claims are returned in
// (suspended_at_ms, execution_id) order. An error after some claims were
// made returns those claims without the error (their leases are the
// caller's; the next call meets the error); an error before any is
// returned as is.
func (b *Backend) ClaimResumedExecutions(ctx context.Context, args contracts.ClaimBatchArgs) (contracts.ClaimBatchOutcome, error) {
	var all []claimed
	err := errRetriesExhausted("claim_resumed_executions") // unless a round ends the loop
	for range maxAttempts {
		got, done, rerr := b.claimRound(ctx, args.Max-len(all), args.LeaseMs)
		all = append(all, got...)
		if rerr != nil || done || len(all) == args.Max {
			err = rerr
			break
		}
	}
	if len(all) == 0 && err != nil {
		return contracts.ClaimBatchOutcome{}, err
	}
	// Claims made are returned, an error after them is not: their leases
	// are the caller's, and the next call meets the error.
	sort.Slice(all, func(i, j int) bool { return all[i].member < all[j].member })
	out := contracts.ClaimBatchOutcome{Claims: make([]contracts.ClaimOutcome, len(all))}
	for i, c := range all {
		out.Claims[i] = c.out
	}
	return out, nil
}

// claimRound makes up to need claims, oldest first. done reports that
// nothing else was claimable when it looked: another round would find
// nothing.
func (b *Backend) claimRound(ctx context.Context, need int, leaseMs int64) (got []claimed, done bool, err error) {
	leases := make([]string, need)
	for i := range leases {
		leases[i] = driver.NewID()
	}
	switch {
	case b.parts == 1:
		v, err := b.run(ctx, scriptClaim, 0, claimArgs(leases, leaseMs)...)
		if err != nil {
			return nil, false, err
		}
		got, err = parseClaims(v)
		return got, true, err
	case b.hint != "":
		// Called on partition 0: its store marker is checked by value, and
		// every partition the script asks must have one (claim_hinted.lua).
		v, err := b.run(ctx, scriptClaimHinted, 0, claimArgs(leases, leaseMs)...)
		if err != nil {
			return nil, false, err
		}
		switch str(v, 0) {
		case "hint":
			// Due timers promoted: the next round asks claim_hinted again.
			return nil, false, b.promoteHinted(ctx, v[1:])
		case "full":
			return b.claimPlanned(ctx, b.allPartitions(), true, leases, leaseMs)
		}
		got, err = parseClaims(v)
		return got, true, err
	}
	return b.claimPlanned(ctx, b.allPartitions(), false, leases, leaseMs)
}

// claimPlanned asks partitions for their len(leases) oldest candidates in
// one pipeline, picks the len(leases) oldest of all and claims them in one
// pipeline of claim calls, one per partition holding some, with as many
// lease ids as it holds of them. complete marks the claim hint complete
// afterwards (every partition was asked).
func (b *Backend) claimPlanned(ctx context.Context, partitions []int, complete bool, leases []string, leaseMs int64) (got []claimed, done bool, err error) {
	count := strconv.Itoa(len(leases))
	replies, err := b.runAll(ctx, scriptClaimPeek, partitions, func(int) []any { return []any{count} })
	if err != nil {
		return nil, false, err
	}
	type candidate struct {
		member    string
		partition int
	}
	var cs []candidate
	for i, r := range replies {
		if r.err != nil {
			return nil, false, r.err
		}
		for j := range r.values {
			cs = append(cs, candidate{str(r.values, j), partitions[i]})
		}
	}
	if complete {
		if err := b.completeHint(ctx); err != nil {
			return nil, false, err
		}
	}
	if len(cs) == 0 {
		return nil, true, nil
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].member < cs[j].member })
	cs = cs[:min(len(cs), len(leases))]
	leasesOf := map[int][]string{}
	var planned []int
	for i, c := range cs {
		if leasesOf[c.partition] == nil {
			planned = append(planned, c.partition)
		}
		leasesOf[c.partition] = append(leasesOf[c.partition], leases[i])
	}
	replies, err = b.runAll(ctx, scriptClaim, planned, func(p int) []any { return claimArgs(leasesOf[p], leaseMs) })
	if err != nil {
		return nil, false, err
	}
	var first error
	for _, r := range replies {
		var cl []claimed
		if r.err == nil {
			cl, r.err = parseClaims(r.values)
		}
		if r.err != nil {
			if first == nil {
				first = r.err
			}
			continue
		}
		got = append(got, cl...)
	}
	sort.Slice(got, func(i, j int) bool { return got[i].member < got[j].member })
	// Every candidate claimed and fewer than asked: nothing else was ready.
	return got, first == nil && len(got) == len(cs) && len(cs) < len(leases), first
}

// claimArgs are the arguments of a claim script after P: the first lease
// id, the lease's length, then the further lease ids of a batch.
func claimArgs(leases []string, leaseMs int64) []any {
	args := make([]any, 0, len(leases)+1)
	args = append(args, leases[0], formatInt(leaseMs))
	for _, l := range leases[1:] {
		args = append(args, l)
	}
	return args
}

// parseClaims decodes the reply of a claim script: {'none'}, one claim or
// a batch ({'batch', n1, claim1..., n2, claim2...}, claim_lib.lua).
func parseClaims(v []any) ([]claimed, error) {
	switch str(v, 0) {
	case contracts.OutcomeNone:
		return nil, nil
	case contracts.OutcomeClaimed:
		c, err := parseClaim(v)
		if err != nil {
			return nil, err
		}
		return []claimed{c}, nil
	case "batch":
		var out []claimed
		for i := 1; i < len(v); {
			n, err := num(v, i)
			if err != nil || n < claimReplyLen || int64(len(v)-i-1) < n {
				return nil, interpretError(errMalformedReply)
			}
			c, err := parseClaim(v[i+1 : i+1+int(n)])
			if err != nil {
				return nil, err
			}
			out = append(out, c)
			i += 1 + int(n)
		}
		return out, nil
	}
	return nil, interpretError(errMalformedReply)
}
