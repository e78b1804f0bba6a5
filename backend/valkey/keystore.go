package valkey

import (
	"context"
	"encoding/hex"
	"strconv"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/kek"
)

// secretOfCurrent asks keys_load for the current kid's secret.
const secretOfCurrent = ":current"

// loadedKeys is one partition's keystore as keys_load returns it: secrets
// only of the kid asked for.
type loadedKeys struct {
	nowMs int64
	keys  driver.PartitionKeys
}

// keysStride is the number of reply elements per kid in a keys_load or
// snapshot reply: kid, expires_at_ms, stored secret, revoked.
const keysStride = 4

// parseKeys decodes a keys_load (or snapshot) reply. A revoked kid
// (docs/spec.md §8.7) comes without a secret, as the store holds it.
func parseKeys(v []any) (loadedKeys, error) {
	now, err := num(v, 0)
	if err != nil {
		return loadedKeys{}, err
	}
	n, err := num(v, 2)
	if err != nil {
		return loadedKeys{}, err
	}
	if n < 0 || int64(len(v)) != 3+keysStride*n {
		return loadedKeys{}, errMalformedReply
	}
	current := str(v, 1)
	lk := loadedKeys{nowMs: now}
	for i := range int(n) {
		rec, err := parseKeyRecord(v, 3+keysStride*i, current)
		if err != nil {
			return loadedKeys{}, err
		}
		if rec.Kid == current {
			lk.keys.Current = &rec
			continue
		}
		lk.keys.Verifying = append(lk.keys.Verifying, rec)
	}
	if current != "" && lk.keys.Current == nil {
		return loadedKeys{}, errMalformedReply
	}
	return lk, nil
}

// parseKeyRecord decodes the record at v[at:at+keysStride] of a keys_load
// reply; a kid other than current must carry its expires_at_ms, and a
// revoked kid is never current and holds no secret.
func parseKeyRecord(v []any, at int, current string) (driver.KidRecord, error) {
	rec := driver.KidRecord{Kid: str(v, at), Revoked: str(v, at+3) == "1"}
	if contracts.ValidateKid("kid", rec.Kid) != nil {
		return rec, errMalformedReply
	}
	s := str(v, at+2)
	if rec.Revoked && (s != "" || rec.Kid == current) {
		return rec, errMalformedReply
	}
	if s != "" {
		var err error
		if rec.Secret, err = hex.DecodeString(s); err != nil {
			return rec, errMalformedReply
		}
	}
	if rec.Kid == current {
		return rec, nil
	}
	exp, err := num(v, at+1)
	if err != nil {
		return rec, err
	}
	rec.ExpiresAtMs = &exp
	return rec, nil
}

// loadKeys reads one partition's keystore and the server clock in one
// round trip; secretOf names the kid whose secret to fetch ("" none).
func (b *Backend) loadKeys(ctx context.Context, partition int, secretOf string) (loadedKeys, error) {
	v, err := b.run(ctx, scriptKeysLoad, partition, secretOf)
	if err != nil {
		return loadedKeys{}, err
	}
	lk, err := parseKeys(v)
	return lk, interpretError(err)
}

// loadKid reads, in one round trip, the partition's current kid, the record
// of kid (secretOfCurrent: of the current kid) and the server clock: what
// sign and verify need, and less than loadKeys reads.
func (b *Backend) loadKid(ctx context.Context, partition int, kid string) (loadedKeys, error) {
	v, err := b.run(ctx, scriptKeysKid, partition, kid)
	if err != nil {
		return loadedKeys{}, err
	}
	lk, err := parseKid(v)
	if err != nil {
		return loadedKeys{}, interpretError(err)
	}
	// Only usable kids are opened: an expired kid's token is token_expired
	// whatever its secret.
	return lk, openKeys(b.keyring(), partition, &lk.keys, lk.nowMs)
}

// parseKid decodes a keys_kid reply into a keystore holding the current kid
// (with its secret when it is the kid asked for) and the kid asked for; a
// revoked kid (docs/spec.md §8.7) comes back revoked, without a secret, so
// that its tokens answer token_expired.
func parseKid(v []any) (loadedKeys, error) {
	now, err := num(v, 0)
	if err != nil || len(v) != 6 {
		return loadedKeys{}, errMalformedReply
	}
	current, kid, secretHex, exp, revoked := str(v, 1), str(v, 2), str(v, 3), str(v, 4), str(v, 5) == "1"
	known := secretHex != "" || revoked
	if current != "" && contracts.ValidateKid("kid", current) != nil || known && contracts.ValidateKid("kid", kid) != nil {
		return loadedKeys{}, errMalformedReply
	}
	lk := loadedKeys{nowMs: now}
	var rec *driver.KidRecord
	switch {
	case revoked:
		if secretHex != "" || kid == current {
			return loadedKeys{}, errMalformedReply
		}
		rec = &driver.KidRecord{Kid: kid, Revoked: true}
	case secretHex != "":
		secret, err := hex.DecodeString(secretHex)
		if err != nil {
			return loadedKeys{}, errMalformedReply
		}
		rec = &driver.KidRecord{Kid: kid, Secret: secret}
	}
	switch {
	case current != "" && kid == current:
		if rec == nil {
			return loadedKeys{}, errMalformedReply
		}
		lk.keys.Current = rec
	case rec != nil:
		e, err := strconv.ParseInt(exp, 10, 64)
		if err != nil {
			return loadedKeys{}, errMalformedReply
		}
		rec.ExpiresAtMs = &e
		lk.keys.Verifying = []driver.KidRecord{*rec}
	}
	if current != "" && lk.keys.Current == nil {
		lk.keys.Current = &driver.KidRecord{Kid: current} // secret not read
	}
	return lk, nil
}

// loadAllKeys reads every partition's keystore in one pipeline and opens
// the secrets it read with ring. Any partition's failure fails the call.
func (b *Backend) loadAllKeys(ctx context.Context, ring *kek.Keyring, secretOf string) ([]loadedKeys, error) {
	replies, err := b.runAll(ctx, scriptKeysLoad, b.allPartitions(), func(int) []any { return []any{secretOf} })
	if err != nil {
		return nil, err
	}
	out := make([]loadedKeys, len(replies))
	for p, r := range replies {
		if r.err != nil {
			return nil, r.err
		}
		if out[p], err = parseKeys(r.values); err != nil {
			return nil, interpretError(err)
		}
		if err := openKeys(ring, p, &out[p].keys, -1); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Seed installs args.Kid on every partition when no partition has a current
// kid (docs/spec.md §4). It takes three round trips at most:
//
//  1. one pipeline reads every partition; driver.PlanSeed decides each,
//     and the partitions together decide the outcome;
//  2. partition 0 installs atomically, only if it still has no current kid:
//     it is the arbiter between concurrent seeds (exactly one of them sees
//     "installed" and answers seeded; the others see its kid and answer
//     already_seeded or already_initialized, and a loser of another kid
//     writes nothing more);
//  3. one pipeline installs on the other partitions lacking a current kid.
//
// Step 3 also repairs a seed that was interrupted after step 2: a partition
// without a current kid is installed when every partition that has one
// holds args.Kid with the same secret.
//
// Each partition stores args.Kid's secret sealed for that partition under
// the installed keyring; secrets are compared after opening, so that a seed
// re-run under another KEK is still already_seeded with the same secret.
func (b *Backend) Seed(ctx context.Context, args contracts.SeedArgs) (contracts.SeedOutcome, error) {
	ring := b.keyring()
	parts, err := b.loadAllKeys(ctx, ring, args.Kid)
	if err != nil {
		return contracts.SeedOutcome{}, err
	}
	out, targets := planSeedAll(parts, args)
	if len(targets) == 0 {
		if b.waitReplicas > 0 && out.Outcome == contracts.SeedAlreadySeeded {
			// Answered from reads: the seed it acknowledges may not be on
			// the replicas yet (replication.go).
			if err := b.confirmAll(ctx); err != nil {
				return contracts.SeedOutcome{}, err
			}
		}
		return out, nil
	}
	op := driver.NewID() // a re-sent install answers "installed" again
	if targets[0] == 0 {
		var proceed bool
		if out, proceed, err = b.seedArbiter(ctx, ring, args, out, op); err != nil || !proceed {
			return out, err
		}
		targets = targets[1:]
	}
	if err := b.seedInstall(ctx, ring, args, targets, op); err != nil {
		return contracts.SeedOutcome{}, err
	}
	return out, nil
}

// planSeedAll decides seed over every partition from their keystores and
// returns the outcome and the partitions to install on (ascending).
func planSeedAll(parts []loadedKeys, args contracts.SeedArgs) (contracts.SeedOutcome, []int) {
	var seeded, known, initialized []contracts.SeedOutcome
	var empty []int
	repairable := true // every current kid is args.Kid with the same secret
	for p, lk := range parts {
		_, o, _ := driver.PlanSeed(lk.keys, args)
		switch o.Outcome {
		case contracts.SeedSeeded:
			seeded = append(seeded, o)
			empty = append(empty, p)
		case contracts.SeedAlreadySeeded:
			known = append(known, o)
		default:
			initialized = append(initialized, o)
		}
		if c := lk.keys.Current; c != nil && (c.Kid != args.Kid || !c.Secret.Equal(args.Secret)) {
			repairable = false
		}
	}
	switch {
	case len(known) == 0 && len(initialized) == 0:
		return seeded[0], empty
	case len(known) > 0:
		out := known[0]
		same := true
		for _, o := range known {
			same = same && *o.SameSecret
		}
		out.SameSecret = &same
		if repairable {
			return out, empty
		}
		return out, nil
	default:
		return initialized[0], nil
	}
}

// seedArbiter installs on partition 0 and reports the outcome as partition
// 0 decided it, and whether to go on installing on the other partitions.
func (b *Backend) seedArbiter(ctx context.Context, ring *kek.Keyring, args contracts.SeedArgs, planned contracts.SeedOutcome, op string) (contracts.SeedOutcome, bool, error) {
	v, err := b.run(ctx, scriptSeedInstall, 0, args.Kid, sealHex(ring, args.Kid, 0, args.Secret), op)
	if err != nil {
		return contracts.SeedOutcome{}, false, err
	}
	if str(v, 0) == "installed" {
		return planned, true, nil
	}
	current, same := str(v, 1), str(v, 2) == "1"
	if current != args.Kid {
		return contracts.SeedOutcome{Outcome: contracts.SeedAlreadyInitialized, Kid: args.Kid, CurrentKid: current}, false, nil
	}
	if !same {
		// Another stored form: the same secret sealed under another KEK, or another secret.
		if same, err = sameSecret(ring, args.Kid, 0, str(v, 3), args.Secret); err != nil {
			return contracts.SeedOutcome{}, false, err
		}
	}
	out := contracts.SeedOutcome{Outcome: contracts.SeedAlreadySeeded, Kid: args.Kid, CurrentKid: current, SameSecret: &same}
	return out, same, nil
}

// seedInstall installs args.Kid on the given partitions in one pipeline;
// each install is conditional on the partition having no current kid.
func (b *Backend) seedInstall(ctx context.Context, ring *kek.Keyring, args contracts.SeedArgs, partitions []int, op string) error {
	if len(partitions) == 0 {
		return nil
	}
	replies, err := b.runAll(ctx, scriptSeedInstall, partitions, func(p int) []any {
		return []any{args.Kid, sealHex(ring, args.Kid, p, args.Secret), op}
	})
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

// RotateAll rotates every partition, each atomically in one script call, all
// in one pipeline (docs/spec.md §4). A partition's failure (rotation_conflict,
// an unreachable node) is reported in its entry; re-running the same
// rotation repairs a partial one, done partitions answering noop.
//
// Each partition stores the new secret sealed for that partition under the
// installed keyring. When the new kid is current with another stored form,
// the script writes nothing and returns that form; it is opened here and
// compared in constant time: the same secret (sealed under another KEK) is
// noop, another secret rotation_conflict.
func (b *Backend) RotateAll(ctx context.Context, args contracts.RotateArgs) (contracts.RotateAllResult, error) {
	ring := b.keyring()
	grace := formatInt(args.GraceMs)
	// The operation id makes a re-sent partition call answer what it answered.
	op := driver.NewID()
	replies, err := b.runAll(ctx, scriptRotate, b.allPartitions(), func(p int) []any {
		return []any{args.NewKid, sealHex(ring, args.NewKid, p, args.NewSecret), grace, op}
	})
	if err != nil {
		return contracts.RotateAllResult{}, err
	}
	res := contracts.RotateAllResult{Entries: make([]contracts.RotateEntry, len(replies))}
	for p, r := range replies {
		entry := contracts.RotateEntry{Partition: p}
		out, err := parseRotate(r, args.NewKid, func(storedHex string) (bool, error) {
			return sameSecret(ring, args.NewKid, p, storedHex, args.NewSecret)
		})
		if err != nil {
			entry.Error = contracts.AsError(err)
		} else {
			entry.Outcome = &out
		}
		res.Entries[p] = entry
	}
	return res, nil
}

// parseRotate decodes one partition's rotate reply. same decides a reply
// naming newKid current with another stored form: whether that form holds
// the new secret (noop) or not (rotation_conflict).
func parseRotate(r partitionReply, newKid string, same func(storedHex string) (bool, error)) (contracts.RotateOutcome, error) {
	if r.err != nil {
		return contracts.RotateOutcome{}, r.err
	}
	switch str(r.values, 0) {
	case contracts.RotateNoop:
		return contracts.RotateOutcome{Outcome: contracts.RotateNoop, Kid: str(r.values, 1)}, nil
	case "current":
		ok, err := same(str(r.values, 1))
		if err != nil {
			return contracts.RotateOutcome{}, err
		}
		if !ok {
			return contracts.RotateOutcome{}, rotationConflict(newKid, "current")
		}
		return contracts.RotateOutcome{Outcome: contracts.RotateNoop, Kid: newKid}, nil
	case contracts.RotateRotated:
		gc, err := num(r.values, 2)
		if err != nil {
			return contracts.RotateOutcome{}, interpretError(err)
		}
		out := contracts.RotateOutcome{Outcome: contracts.RotateRotated, NewKid: newKid, GCCount: int(gc)}
		if prev := str(r.values, 1); prev != "" {
			out.PreviousKid = &prev
		}
		return out, nil
	}
	return contracts.RotateOutcome{}, interpretError(errMalformedReply)
}

var _ driver.KidRevoker = (*Backend)(nil)

// RevokeKid revokes args.Kid on every partition (docs/spec.md §8.7), each
// atomically in one revoke.lua call, all in one pipeline, as RotateAll. The
// script decides as driver.PlanRevoke: a verifying kid that still verifies
// loses its secret (deleted from the store) and keeps its name, revoked,
// with an expiry of now - 1; the change is published on the keystore
// channel (watch.go) like a rotation. Each entry, in partition order, is
// then worded by driver.RevokePartition (noop, revoked, or kid_is_current
// in the entry), and a partition that failed (an unreachable node) carries
// its error; re-running the revocation repairs a partial one.
func (b *Backend) RevokeKid(ctx context.Context, args contracts.RevokeKidArgs) (contracts.RevokeKidResult, error) {
	op := driver.NewID() // a re-sent partition call answers what it answered
	replies, err := b.runAll(ctx, scriptRevoke, b.allPartitions(), func(int) []any {
		return []any{args.Kid, op}
	})
	if err != nil {
		return contracts.RevokeKidResult{}, err
	}
	res := contracts.RevokeKidResult{Entries: make([]contracts.RevokeEntry, len(replies))}
	for p, r := range replies {
		res.Entries[p] = revokeEntry(p, r, args)
	}
	return res, nil
}

// revokeEntry turns one partition's revoke.lua reply into its entry,
// through driver.RevokePartition on the keystore the script's answer
// stands for, so that outcomes and the kid_is_current detail are the
// kit's.
func revokeEntry(p int, r partitionReply, args contracts.RevokeKidArgs) contracts.RevokeEntry {
	if r.err != nil {
		return contracts.RevokeEntry{Partition: p, Error: contracts.AsError(r.err)}
	}
	var keys driver.PartitionKeys
	switch str(r.values, 0) {
	case "current":
		keys.Current = &driver.KidRecord{Kid: args.Kid}
	case contracts.RevokeRevoked:
		keys.Verifying = []driver.KidRecord{{Kid: args.Kid}} // verifies at any instant
	case contracts.RevokeNoop:
	default:
		return contracts.RevokeEntry{Partition: p, Error: contracts.AsError(interpretError(errMalformedReply))}
	}
	entry, _, _ := driver.RevokePartition(p, keys, args, 0)
	return entry
}

// ListKids lists every partition's current kid and unexpired verifying kids,
// reading all partitions in one pipeline; each partition is rendered at its
// own server clock by driver.ListPartition.
func (b *Backend) ListKids(ctx context.Context, _ contracts.ListKidsArgs) (contracts.ListKidsResult, error) {
	parts, err := b.loadAllKeys(ctx, nil, "") // reads no secret
	if err != nil {
		return contracts.ListKidsResult{}, err
	}
	res := contracts.ListKidsResult{Partitions: make([]contracts.PartitionKids, len(parts))}
	for p, lk := range parts {
		res.Partitions[p] = driver.ListPartition(p, lk.keys, lk.nowMs)
	}
	return res, nil
}

// Sign signs args.Message with the current kid of the scope's partition:
// one round trip fetches the kid and its secret; the MAC is computed here.
func (b *Backend) Sign(ctx context.Context, args contracts.SignArgs) (contracts.SignResult, error) {
	lk, err := b.loadKid(ctx, driver.PartitionOf(args.Scope, b.parts), secretOfCurrent)
	if err != nil {
		return contracts.SignResult{}, err
	}
	return driver.SignWith(lk.keys, args)
}

// Verify checks a token against the scope's partition at the server's
// clock (docs/spec.md §3): one round trip fetches the token kid's secret,
// expiry and the clock; driver.CheckToken decides in constant time.
func (b *Backend) Verify(ctx context.Context, args contracts.VerifyArgs) (contracts.VerifyResult, error) {
	t, err := contracts.ParseToken("token", args.Token)
	if err != nil {
		return contracts.VerifyResult{}, err
	}
	lk, err := b.loadKid(ctx, driver.PartitionOf(args.Scope, b.parts), t.Kid)
	if err != nil {
		return contracts.VerifyResult{}, err
	}
	return driver.VerifyWith(lk.keys, args, lk.nowMs)
}
