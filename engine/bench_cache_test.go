package engine_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"sort"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/backend/memory"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/engine"
)

// benchMessage is a waitpoint message as suspend signs it (about 80 bytes).
var benchMessage = []byte("exec-0001|6f1c2b8e-4a5d-4c3e-9f70-1b2a3c4d5e6f|approve|1767225600000")

// The pair of the first target: a cached Engine.Verify of a valid
// token against one raw HMAC-SHA256 over the same message with a keyed,
// reused crypto/hmac state (the cheapest HMAC the standard library offers).
// Target: cached ≥ 0.8× raw throughput, ≤ 2 allocations per verify.

func BenchmarkVerifyCached(b *testing.B) {
	e := engine.New(memory.New(), engine.WithKeystoreCache(time.Hour))
	if _, err := e.Seed(bg, contracts.SeedArgs{Kid: "kid-a", Secret: secret('a')}); err != nil {
		b.Fatal(err)
	}
	a := contracts.VerifyArgs{Scope: "exec-0001", Message: benchMessage, Token: driver.SignToken("kid-a", secret('a'), driver.SignatureInput("kid-a", "exec-0001", benchMessage))}
	if _, err := e.Verify(bg, a); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(benchMessage)))
	for b.Loop() {
		if _, err := e.Verify(bg, a); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRawHMACSHA256(b *testing.B) {
	h := hmac.New(sha256.New, secret('a'))
	input := driver.SignatureInput("kid-a", "exec-0001", benchMessage)
	want := driver.ComputeMAC(secret('a'), input)
	var sum [sha256.Size]byte
	b.ReportAllocs()
	b.SetBytes(int64(len(benchMessage)))
	for b.Loop() {
		h.Reset()
		h.Write(input)
		h.Sum(sum[:0])
		if !hmac.Equal(sum[:], want[:]) {
			b.Fatal("mac differs")
		}
	}
}

// BenchmarkVerifyUncachedMemory is the same verify through the memory
// driver (one lock, a fresh HMAC per call): what the cache saves in-process.
func BenchmarkVerifyUncachedMemory(b *testing.B) {
	e := engine.New(memory.New(), engine.WithKeystoreCache(0))
	if _, err := e.Seed(bg, contracts.SeedArgs{Kid: "kid-a", Secret: secret('a')}); err != nil {
		b.Fatal(err)
	}
	a := contracts.VerifyArgs{Scope: "exec-0001", Message: benchMessage, Token: driver.SignToken("kid-a", secret('a'), driver.SignatureInput("kid-a", "exec-0001", benchMessage))}
	b.ReportAllocs()
	b.SetBytes(int64(len(benchMessage)))
	for b.Loop() {
		if _, err := e.Verify(bg, a); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyCachedParallel runs cached verifies from GOMAXPROCS
// goroutines: the hot path takes no lock.
func BenchmarkVerifyCachedParallel(b *testing.B) {
	e := engine.New(memory.New(), engine.WithKeystoreCache(time.Hour))
	if _, err := e.Seed(bg, contracts.SeedArgs{Kid: "kid-a", Secret: secret('a')}); err != nil {
		b.Fatal(err)
	}
	a := contracts.VerifyArgs{Scope: "exec-0001", Message: benchMessage, Token: driver.SignToken("kid-a", secret('a'), driver.SignatureInput("kid-a", "exec-0001", benchMessage))}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.Verify(bg, a); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkVerifyCachedVsRaw runs the pair above interleaved, in 20 rounds
// of b.N/20 operations each, and reports both per-op costs (the fastest
// and the median round) and their throughput ratio cached/raw (target
// ≥ 0.8). Interleaving makes the ratio robust on a shared, noisy machine.
// Run it with a fixed count: -bench VerifyCachedVsRaw -benchtime 2000000x.
func BenchmarkVerifyCachedVsRaw(b *testing.B) {
	e := engine.New(memory.New(), engine.WithKeystoreCache(time.Hour))
	if _, err := e.Seed(bg, contracts.SeedArgs{Kid: "kid-a", Secret: secret('a')}); err != nil {
		b.Fatal(err)
	}
	input := driver.SignatureInput("kid-a", "exec-0001", benchMessage)
	a := contracts.VerifyArgs{Scope: "exec-0001", Message: benchMessage, Token: driver.SignToken("kid-a", secret('a'), input)}
	h := hmac.New(sha256.New, secret('a'))
	want := driver.ComputeMAC(secret('a'), input)
	var sum [sha256.Size]byte
	raw := func() {
		h.Reset()
		h.Write(input)
		h.Sum(sum[:0])
		if !hmac.Equal(sum[:], want[:]) {
			b.Fatal("mac differs")
		}
	}
	cached := func() {
		if _, err := e.Verify(bg, a); err != nil {
			b.Fatal(err)
		}
	}
	const rounds = 20
	per := max(b.N/rounds, 1)
	round := func(f func()) float64 {
		t0 := time.Now()
		for range per {
			f()
		}
		return float64(time.Since(t0).Nanoseconds()) / float64(per)
	}
	var rawNs, cachedNs []float64
	b.ResetTimer()
	for range rounds {
		rawNs = append(rawNs, round(raw))
		cachedNs = append(cachedNs, round(cached))
	}
	sort.Float64s(rawNs)
	sort.Float64s(cachedNs)
	b.ReportMetric(rawNs[0], "raw-ns/op")
	b.ReportMetric(cachedNs[0], "cached-ns/op")
	b.ReportMetric(rawNs[0]/cachedNs[0], "ratio-fastest")
	b.ReportMetric(rawNs[rounds/2]/cachedNs[rounds/2], "ratio-median")
}
