package cli_test

import (
	"strings"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

// seeded returns a fresh shared store with kid k1 seeded.
func seeded(t *testing.T) (string, *clock) {
	b, c := newStore(t)
	run(t, "", "--backend", b, "seed", "--kid", "k1", "--secret-hex", secretA).ok(t)
	return b, c
}

func TestSuspendSignalClaimComplete(t *testing.T) {
	b, clock := seeded(t)
	now := itoa(clock.NowMs())

	sus := run(t, "", "--backend", b, "suspend", "--execution", "order-7", "--waitpoint", "approve",
		"--waitpoint", "pay", "--condition", "all", "--timeout-ms", "60000", "--idempotency-key", "s1").ok(t)
	if sus["outcome"] != "suspended" || sus["condition"] != "all" || sus["timeout_at_ms"] != float64(clock.NowMs()+60000) {
		t.Fatalf("suspend: %v", sus)
	}
	wps := sus["waitpoints"].([]any)
	if len(wps) != 2 || str(t, wps[1], "waitpoint_key") != "pay" {
		t.Fatalf("waitpoints: %v", wps)
	}

	t.Run("ReplayWithSameIdempotencyKeyIsByteIdentical", func(t *testing.T) {
		first := run(t, "", "--backend", b, "suspend", "--execution", "order-7", "--waitpoint", "approve",
			"--waitpoint", "pay", "--condition", "all", "--timeout-ms", "60000", "--idempotency-key", "s1")
		again := run(t, "", "--backend", b, "suspend", "--execution", "order-7", "--waitpoint", "approve",
			"--waitpoint", "pay", "--condition", "all", "--timeout-ms", "60000", "--idempotency-key", "s1")
		if first.stdout != again.stdout || first.code != 0 {
			t.Fatalf("replay differs:\n%s%s", first.stdout, again.stdout)
		}
	})
	t.Run("ListedAsSuspended", func(t *testing.T) {
		r := run(t, "", "--backend", b, "suspended")
		wantStdout(t, r, `{"executions":[{"execution_id":"order-7","suspension_id":"`+str(t, sus, "suspension_id")+
			`","suspended_at_ms":`+now+`,"timeout_at_ms":`+itoa(clock.NowMs()+60000)+`,"waitpoints":2,"tags":[]}],"next_cursor":null}`)
	})
	t.Run("NothingToClaimYet", func(t *testing.T) {
		wantStdout(t, run(t, "", "--backend", b, "claim", "--worker", "w1"), `{"outcome":"none"}`)
	})

	signal := func(t *testing.T, i int, payload string) result {
		return run(t, "", "--backend", b, "signal", "--execution", "order-7",
			"--waitpoint-id", str(t, wps[i], "waitpoint_id"), "--token", str(t, wps[i], "token"),
			"--name", "done", "--payload", payload, "--idempotency-key", "d1")
	}
	first := signal(t, 0, `{"by": "alice"}`).ok(t)
	if first["outcome"] != "accepted" || first["resumed"] != false {
		t.Fatalf("first signal: %v", first)
	}
	t.Run("DuplicateDelivery", func(t *testing.T) {
		r := signal(t, 0, `{"by": "alice"}`)
		wantStdout(t, r, `{"outcome":"duplicate","signal_id":"`+str(t, first, "signal_id")+`"}`)
	})
	second := signal(t, 1, `7`).ok(t)
	if second["resumed"] != true {
		t.Fatalf("second signal should resume (condition all): %v", second)
	}

	t.Run("SignalsInDeliveryOrder", func(t *testing.T) {
		r := run(t, "", "--backend", b, "signals", "--execution", "order-7")
		wantStdout(t, r, `{"execution_id":"order-7","suspension_id":"`+str(t, sus, "suspension_id")+`","signals":[`+
			`{"signal_id":"`+str(t, first, "signal_id")+`","waitpoint_id":"`+str(t, wps[0], "waitpoint_id")+
			`","waitpoint_key":"approve","name":"done","payload":{"by":"alice"},"idempotency_key":"d1","delivered_at_ms":`+now+`},`+
			`{"signal_id":"`+str(t, second, "signal_id")+`","waitpoint_id":"`+str(t, wps[1], "waitpoint_id")+
			`","waitpoint_key":"pay","name":"done","payload":7,"idempotency_key":"d1","delivered_at_ms":`+now+`}],"next_cursor":null}`)
	})

	claim := run(t, "", "--backend", b, "claim", "--worker", "w1").ok(t)
	if claim["outcome"] != "claimed" || claim["reason"] != "signal" || claim["lease_expires_at_ms"] != float64(clock.NowMs()+30000) {
		t.Fatalf("claim (default lease 30000 ms): %v", claim)
	}
	if len(claim["signals"].([]any)) != 2 {
		t.Fatalf("claim signals: %v", claim["signals"])
	}
	lease := str(t, claim, "lease_id")

	t.Run("CompleteWithWrongLease", func(t *testing.T) {
		run(t, "", "--backend", b, "complete", "--execution", "order-7", "--lease-id", driver.NewID()).
			contractErr(t, contracts.KindConflict, contracts.CodeLeaseMismatch)
	})
	r := run(t, "", "--backend", b, "complete", "--execution", "order-7", "--lease-id", lease)
	wantStdout(t, r, `{"outcome":"completed","execution_id":"order-7"}`)
	run(t, "", "--backend", b, "signals", "--execution", "order-7").
		contractErr(t, contracts.KindNotFound, contracts.CodeExecutionNotFound)
}

func TestSuspendErrors(t *testing.T) {
	t.Run("NoKeystore", func(t *testing.T) {
		b, _ := newStore(t)
		run(t, "", "--backend", b, "suspend", "--execution", "e", "--waitpoint", "w").
			contractErr(t, contracts.KindState, contracts.CodeHMACSecretNotInitialized)
	})
	t.Run("AlreadySuspended", func(t *testing.T) {
		b, _ := seeded(t)
		run(t, "", "--backend", b, "suspend", "--execution", "e", "--waitpoint", "w").ok(t)
		run(t, "", "--backend", b, "suspend", "--execution", "e", "--waitpoint", "w").
			contractErr(t, contracts.KindConflict, contracts.CodeAlreadySuspended)
	})
	t.Run("LeaseOnUnknownExecution", func(t *testing.T) {
		b, _ := seeded(t)
		run(t, "", "--backend", b, "suspend", "--execution", "e", "--waitpoint", "w", "--lease-id", driver.NewID()).
			contractErr(t, contracts.KindConflict, contracts.CodeLeaseMismatch)
	})
	t.Run("ValidationEnvelopes", func(t *testing.T) {
		b, _ := seeded(t)
		for _, args := range [][]string{
			{"--execution", "e", "--waitpoint", "w", "--waitpoint", "w"},
			{"--execution", "e", "--waitpoint", "w", "--condition", "some"},
			{"--execution", "e", "--waitpoint", "w", "--timeout-ms", "0"},
			{"--execution", "e e", "--waitpoint", "w"},
			{"--execution", "e", "--waitpoint", "w", "--lease-id", "not-a-uuid"},
		} {
			r := run(t, "", append([]string{"--backend", b, "suspend"}, args...)...)
			r.contractErr(t, contracts.KindValidation, contracts.CodeInvalidInput)
		}
	})
	t.Run("UsageErrors", func(t *testing.T) {
		run(t, "", "suspend", "--waitpoint", "w").usage(t, "missing --execution")
		run(t, "", "suspend", "--execution", "e").usage(t, "missing --waitpoint")
		run(t, "", "suspend", "--execution", "e", "--waitpoint", "w", "--timeout-ms", "soon").usage(t, "-timeout-ms")
	})
}

func TestSignalErrors(t *testing.T) {
	b, _ := seeded(t)
	sus := run(t, "", "--backend", b, "suspend", "--execution", "e", "--waitpoint", "w").ok(t)
	wp, token := str(t, sus, "waitpoints", 0, "waitpoint_id"), str(t, sus, "waitpoints", 0, "token")
	base := []string{"--backend", b, "signal", "--execution", "e", "--waitpoint-id", wp, "--name", "n"}

	t.Run("InvalidJSONPayload", func(t *testing.T) {
		e := run(t, "", append(base, "--token", token, "--payload", "{nope")...).
			contractErr(t, contracts.KindValidation, contracts.CodeInvalidInput)
		if !strings.HasPrefix(e.Detail, "payload: ") {
			t.Fatalf("detail %q", e.Detail)
		}
	})
	t.Run("WrongToken", func(t *testing.T) {
		bad := token[:len(token)-1] + map[bool]string{true: "1", false: "0"}[strings.HasSuffix(token, "0")]
		e := run(t, "", append(base, "--token", bad)...).contractErr(t, contracts.KindValidation, contracts.CodeInvalidToken)
		if e.Reason != contracts.ReasonSignatureMismatch {
			t.Fatalf("reason %q", e.Reason)
		}
	})
	t.Run("OtherExecutionLearnsNothing", func(t *testing.T) {
		args := []string{"--backend", b, "signal", "--execution", "other", "--waitpoint-id", wp, "--name", "n", "--token", token}
		e := run(t, "", args...).contractErr(t, contracts.KindValidation, contracts.CodeInvalidToken)
		if e.Reason != contracts.ReasonSignatureMismatch {
			t.Fatalf("reason %q", e.Reason)
		}
	})
	t.Run("NoPayloadIsNull", func(t *testing.T) {
		run(t, "", append(base, "--token", token)...).ok(t)
		r := run(t, "", "--backend", b, "signals", "--execution", "e").ok(t)
		sig := r["signals"].([]any)[0].(map[string]any)
		if sig["payload"] != nil || sig["idempotency_key"] != nil {
			t.Fatalf("signal %v: want null payload and idempotency_key", sig)
		}
	})
	t.Run("ClosedWaitpoint", func(t *testing.T) {
		run(t, "", append(base, "--token", token)...).contractErr(t, contracts.KindState, contracts.CodeWaitpointClosed)
	})
	t.Run("UsageErrors", func(t *testing.T) {
		run(t, "", "signal", "--execution", "e").usage(t, "missing --waitpoint-id, --token, --name")
		run(t, "", "signals").usage(t, "missing --execution")
	})
}

func TestSuspendedPaging(t *testing.T) {
	b, clock := seeded(t)
	for _, e := range []string{"a", "b", "c"} {
		run(t, "", "--backend", b, "suspend", "--execution", e, "--waitpoint", "w").ok(t)
		clock.Advance(time.Millisecond)
	}
	page := run(t, "", "--backend", b, "suspended", "--limit", "2").ok(t)
	if n := len(page["executions"].([]any)); n != 2 {
		t.Fatalf("page 1 has %d executions", n)
	}
	next := run(t, "", "--backend", b, "suspended", "--limit", "2", "--cursor", str(t, page, "next_cursor")).ok(t)
	if str(t, next, "executions", 0, "execution_id") != "c" || next["next_cursor"] != nil {
		t.Fatalf("page 2: %v", next)
	}
	run(t, "", "--backend", b, "suspended", "--limit", "0").contractErr(t, contracts.KindValidation, contracts.CodeInvalidInput)
	run(t, "", "--backend", b, "suspended", "--cursor", "!!").contractErr(t, contracts.KindValidation, contracts.CodeInvalidInput)
	run(t, "", "suspended", "--limit", "x").usage(t, "-limit")
}

func TestClaimAndComplete(t *testing.T) {
	t.Run("TimeoutClaimWithLeaseMs", func(t *testing.T) {
		b, clock := seeded(t)
		run(t, "", "--backend", b, "suspend", "--execution", "e", "--waitpoint", "w", "--timeout-ms", "10").ok(t)
		clock.Advance(11 * time.Millisecond)
		c := run(t, "", "--backend", b, "claim", "--worker", "w1", "--lease-ms", "5").ok(t)
		if c["reason"] != "timeout" || c["lease_expires_at_ms"] != float64(clock.NowMs()+5) {
			t.Fatalf("claim: %v", c)
		}
	})
	t.Run("ResuspendWithLease", func(t *testing.T) {
		b, _ := seeded(t)
		sus := run(t, "", "--backend", b, "suspend", "--execution", "e", "--waitpoint", "w").ok(t)
		run(t, "", "--backend", b, "signal", "--execution", "e", "--waitpoint-id", str(t, sus, "waitpoints", 0, "waitpoint_id"),
			"--token", str(t, sus, "waitpoints", 0, "token"), "--name", "go").ok(t)
		lease := str(t, run(t, "", "--backend", b, "claim", "--worker", "w1").ok(t), "lease_id")
		again := run(t, "", "--backend", b, "suspend", "--execution", "e", "--waitpoint", "w2", "--lease-id", lease).ok(t)
		if again["outcome"] != "suspended" {
			t.Fatalf("re-suspend: %v", again)
		}
	})
	t.Run("BatchWithMax", func(t *testing.T) {
		b, clock := seeded(t)
		for _, id := range []string{"e1", "e2", "e3"} {
			run(t, "", "--backend", b, "suspend", "--execution", id, "--waitpoint", "w", "--timeout-ms", "10").ok(t)
			clock.Advance(time.Millisecond)
		}
		clock.Advance(11 * time.Millisecond)
		got := run(t, "", "--backend", b, "claim", "--worker", "w1", "--max", "2").ok(t)
		claims, _ := got["claims"].([]any)
		if len(claims) != 2 || claims[0].(map[string]any)["execution_id"] != "e1" || claims[1].(map[string]any)["execution_id"] != "e2" {
			t.Fatalf("claim --max 2: %v", got)
		}
		if got := run(t, "", "--backend", b, "claim", "--worker", "w1", "--max", "2").ok(t); len(got["claims"].([]any)) != 1 {
			t.Fatalf("claim --max 2 with one left: %v", got)
		}
		wantStdout(t, run(t, "", "--backend", b, "claim", "--worker", "w1", "--max", "2"), `{"claims":[]}`)
		run(t, "", "--backend", b, "claim", "--worker", "w1", "--max", "0").contractErr(t, contracts.KindValidation, contracts.CodeInvalidInput)
	})
	t.Run("Errors", func(t *testing.T) {
		b, _ := seeded(t)
		run(t, "", "--backend", b, "complete", "--execution", "e", "--lease-id", driver.NewID()).
			contractErr(t, contracts.KindNotFound, contracts.CodeExecutionNotFound)
		run(t, "", "--backend", b, "claim", "--worker", "w", "--lease-ms", "-1").
			contractErr(t, contracts.KindValidation, contracts.CodeInvalidInput)
		run(t, "", "claim").usage(t, "missing --worker")
		run(t, "", "complete", "--execution", "e").usage(t, "missing --lease-id")
	})
}

// TestNoHTMLEscaping checks that envelopes print <, > and & as they are.
func TestNoHTMLEscaping(t *testing.T) {
	b, _ := seeded(t)
	r := run(t, "", "--backend", b, "verify", "--message", "m", "--token", "x")
	r.contractErr(t, contracts.KindValidation, contracts.CodeInvalidToken)
	if !strings.Contains(r.stdout, `<kid>:<64 lowercase hex>`) {
		t.Fatalf("detail escaped: %s", r.stdout)
	}
	sus := run(t, "", "--backend", b, "suspend", "--execution", "e", "--waitpoint", "w").ok(t)
	run(t, "", "--backend", b, "signal", "--execution", "e", "--waitpoint-id", str(t, sus, "waitpoints", 0, "waitpoint_id"),
		"--token", str(t, sus, "waitpoints", 0, "token"), "--name", "n", "--payload", `"<a&b>"`).ok(t)
	r = run(t, "", "--backend", b, "signals", "--execution", "e")
	if !strings.Contains(r.stdout, `"payload":"<a&b>"`) {
		t.Fatalf("payload escaped: %s", r.stdout)
	}
}
