package cli_test

import (
	"strings"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/engine"
)

// One-shot commands open no keystore listener (a LISTEN connection on
// PostgreSQL) on a backend that offers one, while an Engine opened the way
// `ff serve` opens it does.
func TestOneShotCommandsOpenNoKeystoreListener(t *testing.T) {
	u, _ := newStore(t)
	u = watchScheme + strings.TrimPrefix(u, testScheme)
	before := watchesStarted.Load()
	run(t, secretA, "--backend", u, "seed", "--kid", "k1", "--secret-file", "-").ok(t)
	run(t, "", "--backend", u, "kids").ok(t)
	run(t, "", "--backend", u, "suspend", "--execution", "e1", "--waitpoint", "a").ok(t)
	run(t, "", "--backend", u, "suspended").ok(t)
	if n := watchesStarted.Load() - before; n != 0 {
		t.Fatalf("one-shot commands started %d keystore listeners, want 0", n)
	}

	e, err := engine.Open(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	// The listener starts in the background.
	for deadline := time.Now().Add(10 * time.Second); watchesStarted.Load() == before && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if watchesStarted.Load()-before != 1 {
		t.Fatal("an Engine with its keystore cache on started no listener: the test cannot see one")
	}
}
