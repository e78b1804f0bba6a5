package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
)

// kidPrefix starts every kid bench installs.
const kidPrefix = "ff-bench-"

// secretBytes is the size of the secrets bench draws.
const secretBytes = 32

// ensureKeystore seeds a fresh kid when no partition has a current kid and
// reports whether the keystore is bench's own: seeded now, or every
// partition's current kid is one that bench installed in an earlier run.
func ensureKeystore(ctx context.Context, e *engine.Engine) (bool, error) {
	kids, err := e.ListKids(ctx)
	if err != nil {
		return false, err
	}
	empty, ours := true, true
	for _, p := range kids.Partitions {
		if p.CurrentKid != nil {
			empty = false
			ours = ours && strings.HasPrefix(*p.CurrentKid, kidPrefix)
		}
	}
	if !empty {
		return ours, nil
	}
	out, err := e.Seed(ctx, contracts.SeedArgs{Kid: kidPrefix + runID(), Secret: newSecret()})
	if err != nil {
		return false, err
	}
	return strings.HasPrefix(out.CurrentKid, kidPrefix), nil
}

// runID is 8 random hex digits naming a run's kids and executions.
func runID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// newSecret is 32 random bytes that nobody sees.
func newSecret() contracts.Secret {
	b := make([]byte, secretBytes)
	_, _ = rand.Read(b)
	return b
}
