package reliability

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/engine"
)

// keystoreGraceMs is long enough that nothing expires during a history, so
// the model needs no clock.
const keystoreGraceMs = 3_600_000

// Given a seeded keystore, when clients rotate (fresh kids, replays, reused
// kids with the wrong secret), list, sign and verify concurrently, then the
// history of every partition is linearizable against KeystoreModel. The
// Engine's keystore cache is off: it serves Sign and Verify from a snapshot
// up to 1 s old by design (engine.WithKeystoreCache), which is not
// linearizable; the soak test runs with it on.
func TestLinearizableKeystore(t *testing.T) {
	clients, perClient := 6, sized(60, 700)
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			e := openEngine(t, tg.url(t), engine.WithKeystoreCache(0))
			seedOnce(t, e, "k0")
			ks := &ksClients{e: e, h: newHistory(), parts: tg.partitions, kids: []string{"k0"}}
			var wg sync.WaitGroup
			for c := range clients {
				wg.Go(func() { ks.run(c, perClient) })
			}
			wg.Wait()
			ks.h.check(t, KeystoreModel("k0"), sized(2*time.Minute, 10*time.Minute))
		})
	}
}

// ksClients drives one keystore history.
type ksClients struct {
	e     *engine.Engine
	h     *history
	parts int
	next  atomic.Int64
	mu    sync.Mutex
	kids  []string // every kid name handed to a rotation
}

func (k *ksClients) run(client, n int) {
	r := rand.New(rand.NewPCG(uint64(client), uint64(time.Now().UnixNano())))
	for i := range n {
		k.h.called()
		switch x := r.IntN(100); {
		case x < 15:
			k.rotate(client, r)
		case x < 30:
			k.list(client)
		case x < 62:
			k.sign(client, r, i)
		case x < 95 || k.parts > 1:
			k.verify(client, r, i)
		default:
			k.seed(client, r)
		}
	}
}

func (k *ksClients) knownKid(r *rand.Rand) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.kids[r.IntN(len(k.kids))]
}

// rotate: a fresh kid (60%), a known kid with its secret (25%: noop when
// current, else rotation_conflict) or with another secret (15%).
func (k *ksClients) rotate(client int, r *rand.Rand) {
	kid, variant := "", 0
	switch x := r.IntN(100); {
	case x < 60:
		kid = fmt.Sprintf("k%d", k.next.Add(1))
		k.mu.Lock()
		k.kids = append(k.kids, kid)
		k.mu.Unlock()
	case x < 85:
		kid = k.knownKid(r)
	default:
		kid, variant = k.knownKid(r), 1
	}
	ctx, cancel := callCtx()
	defer cancel()
	call := k.h.now()
	res, err := k.e.RotateAll(ctx, contracts.RotateArgs{NewKid: kid, NewSecret: secretOf(kid, variant), GraceMs: keystoreGraceMs})
	ret := k.h.now()
	if k.h.unusable("rotate_all", err) {
		return
	}
	if err != nil {
		k.h.fail("rotate_all: " + err.Error())
		return
	}
	for _, en := range res.Entries {
		in := KeystoreInput{Op: KsRotate, Partition: en.Partition, Kid: kid, Variant: variant}
		var out KeystoreOutput
		if en.Error != nil {
			if k.h.unusable("rotate_all entry", en.Error) {
				continue
			}
			out.Err = errCode(en.Error)
		} else {
			out.Outcome = en.Outcome.Outcome
			if en.Outcome.PreviousKid != nil {
				out.Kid = *en.Outcome.PreviousKid
			}
		}
		k.h.add(client, call, ret, in, out)
	}
}

func (k *ksClients) list(client int) {
	ctx, cancel := callCtx()
	defer cancel()
	call := k.h.now()
	res, err := k.e.ListKids(ctx)
	ret := k.h.now()
	if k.h.unusable("list_kids", err) {
		return
	}
	for _, p := range res.Partitions {
		out := KeystoreOutput{Err: errCode(err)}
		if p.CurrentKid != nil {
			out.Kid = *p.CurrentKid
		}
		for _, v := range p.Verifying {
			out.Verifying = append(out.Verifying, v.Kid)
		}
		sort.Strings(out.Verifying)
		k.h.add(client, call, ret, KeystoreInput{Op: KsList, Partition: p.Partition}, out)
	}
}

func (k *ksClients) sign(client int, r *rand.Rand, i int) {
	p := r.IntN(k.parts)
	scope, msg := scopeFor(p, k.parts, r.IntN(20)), []byte(fmt.Sprintf("m-%d-%d", client, i))
	ctx, cancel := callCtx()
	defer cancel()
	call := k.h.now()
	res, err := k.e.Sign(ctx, contracts.SignArgs{Scope: scope, Message: msg})
	ret := k.h.now()
	if k.h.unusable("sign", err) {
		return
	}
	out := KeystoreOutput{Err: errCode(err), Kid: res.Kid, SignedWith: -1}
	for v := range 2 {
		if err == nil && res.Token == driver.SignToken(res.Kid, secretOf(res.Kid, v), driver.SignatureInput(res.Kid, scope, msg)) {
			out.SignedWith = v
		}
	}
	k.h.add(client, call, ret, KeystoreInput{Op: KsSign, Partition: p}, out)
}

// verify a token made here: a known kid (85%) or one never rotated in,
// signed with the kid's secret (90%) or another.
func (k *ksClients) verify(client int, r *rand.Rand, i int) {
	kid := k.knownKid(r)
	if r.IntN(100) < 15 {
		kid = fmt.Sprintf("never-%d", r.IntN(5))
	}
	variant := 0
	if r.IntN(100) < 10 {
		variant = 1
	}
	p := r.IntN(k.parts)
	scope, msg := scopeFor(p, k.parts, r.IntN(20)), []byte(fmt.Sprintf("v-%d-%d", client, i))
	token := driver.SignToken(kid, secretOf(kid, variant), driver.SignatureInput(kid, scope, msg))
	ctx, cancel := callCtx()
	defer cancel()
	call := k.h.now()
	res, err := k.e.Verify(ctx, contracts.VerifyArgs{Scope: scope, Message: msg, Token: token})
	ret := k.h.now()
	if k.h.unusable("verify", err) {
		return
	}
	k.h.add(client, call, ret, KeystoreInput{Op: KsVerify, Partition: p, Kid: kid, Variant: variant},
		KeystoreOutput{Err: errCode(err), Kid: res.Kid})
}

// seed a known kid, with its secret or another (one-partition backends).
func (k *ksClients) seed(client int, r *rand.Rand) {
	kid, variant := k.knownKid(r), r.IntN(2)
	ctx, cancel := callCtx()
	defer cancel()
	call := k.h.now()
	res, err := k.e.Seed(ctx, contracts.SeedArgs{Kid: kid, Secret: secretOf(kid, variant)})
	ret := k.h.now()
	if k.h.unusable("seed", err) {
		return
	}
	out := KeystoreOutput{Err: errCode(err), Outcome: res.Outcome, Kid: res.CurrentKid}
	if res.SameSecret != nil {
		out.SameSecret = *res.SameSecret
	}
	k.h.add(client, call, ret, KeystoreInput{Op: KsSeed, Partition: 0, Kid: kid, Variant: variant}, out)
}
