package valkey

import (
	"context"
	"encoding/hex"
	"strconv"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/kek"
)

var _ driver.SecretSealer = (*Backend)(nil)

// SetKeyring installs the keyring every later call seals and opens stored
// secrets with (nil: secrets are stored in plain, as without a KEK). Safe
// at any time: a call in flight uses the keyring it started with.
func (b *Backend) SetKeyring(r *kek.Keyring) { b.ring.Store(r) }

// keyring returns the installed keyring (nil: none).
func (b *Backend) keyring() *kek.Keyring { return b.ring.Load() }

// sealHex returns the stored form of secret for kid on partition under r,
// as the keystore hash holds it: lowercase hex. Without a keyring it is the
// secret's hex, exactly what the driver stored before KEKs existed.
func sealHex(r *kek.Keyring, kid string, partition int, secret contracts.Secret) string {
	return hex.EncodeToString(r.Seal(kid, partition, secret))
}

// openRecord replaces rec's stored form by the secret it holds. A record
// whose kid is past its grace at nowMs (nowMs < 0: never) is left without
// a secret instead: its token is token_expired whatever the secret, and a
// secret sealed under a KEK dropped since must not turn that answer into
// kek_mismatch.
func openRecord(r *kek.Keyring, partition int, rec *driver.KidRecord, nowMs int64) error {
	if rec == nil || rec.Secret == nil {
		return nil
	}
	if nowMs >= 0 && !rec.Usable(nowMs) {
		rec.Secret = nil
		return nil
	}
	s, err := r.Open(rec.Kid, partition, rec.Secret)
	if err != nil {
		return err
	}
	rec.Secret = s
	return nil
}

// openKeys opens, in place, every secret a loaded keystore holds (see
// openRecord for nowMs).
func openKeys(r *kek.Keyring, partition int, k *driver.PartitionKeys, nowMs int64) error {
	if err := openRecord(r, partition, k.Current, nowMs); err != nil {
		return err
	}
	for i := range k.Verifying {
		if err := openRecord(r, partition, &k.Verifying[i], nowMs); err != nil {
			return err
		}
	}
	return nil
}

// sameSecret reports whether storedHex, kid's stored form on partition,
// holds secret. Equal stored forms answer without opening (sealing is
// deterministic); otherwise the stored form is opened and the secrets are
// compared in constant time, so that a store sealed under another KEK of
// the keyring (or in plain) still matches.
func sameSecret(r *kek.Keyring, kid string, partition int, storedHex string, secret contracts.Secret) (bool, error) {
	if storedHex == sealHex(r, kid, partition, secret) {
		return true, nil
	}
	stored, err := hex.DecodeString(storedHex)
	if err != nil {
		return false, interpretError(errMalformedReply)
	}
	s, err := r.Open(kid, partition, stored)
	if err != nil {
		return false, err
	}
	return s.Equal(secret), nil
}

// rewrapPlan is one partition's share of a rewrap: the ARGV triples of
// rewrap.lua (kid, stored hex as read, new stored hex) and the counts.
type rewrapPlan struct {
	triples   []any
	rewrapped int
	unchanged int
}

// planRewrap decides one partition's rewrap from a keys snapshot reply:
// secrets already in to's form stay, the others are opened with from and
// sealed with to.
func planRewrap(from, to *kek.Keyring, partition int, v []any) (rewrapPlan, error) {
	lk, err := parseKeys(v)
	if err != nil {
		return rewrapPlan{}, interpretError(err)
	}
	var plan rewrapPlan
	recs := lk.keys.Verifying
	if lk.keys.Current != nil {
		recs = append(recs, *lk.keys.Current)
	}
	for _, rec := range recs {
		if rec.Revoked {
			continue // no secret to rewrap (docs/spec.md §8.7)
		}
		if rec.Secret == nil {
			return rewrapPlan{}, interpretError(errMalformedReply) // the snapshot reads every secret
		}
		next, changed, err := driver.RewrapSecret(from, to, rec.Kid, partition, rec.Secret)
		if err != nil {
			return rewrapPlan{}, err
		}
		if !changed {
			plan.unchanged++
			continue
		}
		plan.triples = append(plan.triples, rec.Kid, hex.EncodeToString(rec.Secret), hex.EncodeToString(next))
		plan.rewrapped++
	}
	return plan, nil
}

// RewrapSecrets re-seals every stored secret of every partition under to
// (nil: stores them in plain), opening them with the installed keyring. One
// pipeline (one round trip per node) reads every partition's keystore, the
// new stored forms are computed here, and one pipeline of rewrap.lua calls
// writes them, each partition atomically and only if none of its secrets
// changed since the read (a concurrent rotation or collection is never
// undone); a partition that changed is read and planned again. Kids,
// expiries and current kids are never touched, and to is not installed.
func (b *Backend) RewrapSecrets(ctx context.Context, to *kek.Keyring) (contracts.RewrapResult, error) {
	from := b.keyring()
	plans := make([]rewrapPlan, b.parts)
	pending := b.allPartitions()
	for range maxAttempts {
		replies, err := b.runAll(ctx, scriptKeysSnapshot, pending, func(int) []any { return nil })
		if err != nil {
			return contracts.RewrapResult{}, err
		}
		var writes []int
		for i, r := range replies {
			if r.err != nil {
				return contracts.RewrapResult{}, r.err
			}
			p := pending[i]
			if plans[p], err = planRewrap(from, to, p, r.values); err != nil {
				return contracts.RewrapResult{}, err
			}
			if plans[p].rewrapped > 0 {
				writes = append(writes, p)
			}
		}
		pending = nil
		if len(writes) > 0 {
			op := driver.NewID() // a re-sent partition call answers "ok" again
			replies, err = b.runAll(ctx, scriptRewrap, writes, func(p int) []any {
				return append([]any{op, strconv.Itoa(plans[p].rewrapped)}, plans[p].triples...)
			})
			if err != nil {
				return contracts.RewrapResult{}, err
			}
			for i, r := range replies {
				if r.err != nil {
					return contracts.RewrapResult{}, r.err
				}
				switch str(r.values, 0) {
				case "ok":
				case "retry":
					pending = append(pending, writes[i])
				default:
					return contracts.RewrapResult{}, interpretError(errMalformedReply)
				}
			}
		}
		if len(pending) == 0 {
			var res contracts.RewrapResult
			var read []int // partitions answered from the read alone
			for p, pl := range plans {
				driver.AddRewrapped(&res, pl.rewrapped, pl.unchanged)
				if pl.rewrapped == 0 {
					read = append(read, p)
				}
			}
			if b.waitReplicas > 0 && len(read) > 0 {
				// Their forms may have been written by an earlier call
				// that the replicas did not confirm (replication.go).
				for _, err := range b.confirm(ctx, read) {
					if err != nil {
						return contracts.RewrapResult{}, err
					}
				}
			}
			return res, nil
		}
	}
	return contracts.RewrapResult{}, errRetriesExhausted("rewrap")
}
