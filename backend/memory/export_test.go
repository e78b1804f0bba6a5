package memory

import (
	"bytes"
	"fmt"
	"sort"
	"testing"

	"github.com/flowfabric/flowfabric-go/driver"
)

// Raw returns every byte the memory backend b holds, read around its
// methods, for conformance.Harness.Raw: each kid with its stored secret
// (sealed or plain) and expiry, then every remembered execution with its
// suspensions, waitpoints, signals and idempotency records. Secrets and
// payloads are written as bytes, never through fmt (contracts.Secret
// redacts itself there).
func Raw(t testing.TB, eb driver.Backend) []byte {
	t.Helper()
	b, ok := eb.(*Backend)
	if !ok {
		t.Fatalf("memory.Raw: %T is not a *memory.Backend", eb)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var buf bytes.Buffer
	kid := func(r driver.KidRecord) {
		fmt.Fprintf(&buf, "kid %q", r.Kid)
		if r.ExpiresAtMs != nil {
			fmt.Fprintf(&buf, " expires %d", *r.ExpiresAtMs)
		}
		buf.WriteString(" secret ")
		buf.Write(r.Secret)
		buf.WriteByte('\n')
	}
	if b.keys.Current != nil {
		kid(*b.keys.Current)
	}
	for _, v := range b.keys.Verifying {
		kid(v)
	}
	ids := make([]string, 0, len(b.execs))
	for id := range b.execs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		e := b.execs[id]
		fmt.Fprintf(&buf, "execution %q %s lease %q %d reason %q seq %d\n", e.id, e.state, e.leaseID, e.leaseExpiresAtMs, e.reason, e.nextSeq)
		for _, s := range e.suspensions {
			fmt.Fprintf(&buf, " suspension %q at %d timeout %v %s closed %v signaled %d payload bytes %d\n", s.id, s.suspendedAtMs, fmtPtr(s.timeoutAtMs), s.condition, s.closed, s.signaled, s.payloadBytes)
			for _, w := range s.waitpoints {
				fmt.Fprintf(&buf, "  waitpoint %q key %q at %d signals %d delivered %v\n", w.id, w.key, w.createdAtMs, w.signals, w.delivered)
			}
			for _, sig := range s.signals {
				fmt.Fprintf(&buf, "  signal %d %q %q %q at %d payload ", sig.seq, sig.SignalID, sig.Name, sig.IdempotencyKey, sig.DeliveredAtMs)
				buf.Write(sig.Payload)
				buf.WriteByte('\n')
			}
		}
		for key, rec := range e.suspend {
			fmt.Fprintf(&buf, " suspend record %q %q: ", key, rec.fingerprint)
			buf.Write(rec.stored)
			buf.WriteByte('\n')
		}
	}
	return buf.Bytes()
}

func fmtPtr(p *int64) string {
	if p == nil {
		return "none"
	}
	return fmt.Sprint(*p)
}

// Leftover counts the map entries of the memory backend b that still name
// executionID, for conformance.Harness.Leftover: its execution and its
// remembered waitpoints.
func Leftover(t testing.TB, eb driver.Backend, executionID string) int {
	t.Helper()
	b, ok := eb.(*Backend)
	if !ok {
		t.Fatalf("memory.Leftover: %T is not a *memory.Backend", eb)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	if _, ok := b.execs[executionID]; ok {
		n++
	}
	for _, w := range b.wps {
		if w.exec.id == executionID {
			n++
		}
	}
	return n
}
