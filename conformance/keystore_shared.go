package conformance

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/engine"
)

// sharedScenarios cover a keystore seen by two handles on one store
// (Harness.Reopen: a second process, or the same store after a restart).
// They skip for drivers that cannot share a store (memory).
var sharedScenarios = []keystoreScenario{
	{name: "SeenThroughReopen", run: sharedSeenThroughReopen},
}

// handles returns k and, when the driver can share a store, a second handle
// on it, so that concurrency scenarios race across handles (processes) too.
func (k *keystoreEnv) handles() []*keystoreEnv {
	if k.h.Reopen == nil {
		return []*keystoreEnv{k}
	}
	return []*keystoreEnv{k, k.reopen()}
}

// reopen returns a second handle on k's store, or skips without Reopen.
func (k *keystoreEnv) reopen() *keystoreEnv {
	k.t.Helper()
	if k.h.Reopen == nil {
		k.t.Skip("needs Harness.Reopen (a store shared between handles)")
	}
	b := k.h.Reopen(k.t, k.e.Backend())
	require.NotNil(k.t, b, "conformance: Harness.Reopen returned a nil backend")
	e := engine.New(b)
	k.t.Cleanup(func() { _ = e.Close() })
	return &keystoreEnv{t: k.t, h: k.h, e: e, clock: k.clock, rec: k.rec, parts: e.Capabilities().Partitions}
}

// Given kid-a seeded through one handle, then a second handle on the same
// store sees it (already_seeded, same token), and a rotation through the
// second handle is seen by the first.
func sharedSeenThroughReopen(t *testing.T, k *keystoreEnv) {
	k2 := k.reopen()
	require.Equal(t, k.parts, k2.parts, "the reopened handle declares another partition count")
	k.mustSeed(fxA)
	out, err := k2.seed(fxA)
	k2.wantSeed("seed through the second handle", out, err, seedAlready(fxA, fxA, true))
	msg := []byte("shared")
	require.Equal(t, expectedToken(fxA, "s", msg), k2.mustSign("s", msg).Token, "second handle signs with another secret")
	k2.mustRotate(fxB, hourMs)
	k.wantCurrent("first handle after a rotation through the second", k.list(), kidOf(fxB), fxA.Kid)
	k.mustVerify("s", msg, expectedToken(fxA, "s", msg), fxA.Kid)
	k.sameKids("the two handles' views", k.list(), k2.list())
}
