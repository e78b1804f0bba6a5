package conformance

import (
	"context"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
)

// Run runs the whole conformance suite against the driver h makes: the
// keystore scenarios, the suspension and signal scenarios (with their
// clock-controlled group, skipped without Harness.ClockControl), the
// concurrency scenarios, and the secrets-at-rest scenarios (for drivers
// implementing driver.SecretSealer). A driver that passes Run is a
// FlowFabric-Go backend.
func Run(t *testing.T, h Harness) {
	t.Helper()
	RunKeystore(t, h)
	RunSuspensions(t, h)
	RunConcurrency(t, h)
	RunSecretsAtRest(t, h)
}

// RunSuspensions runs the suspension and signal scenarios (docs/spec.md §5),
// the clock-controlled group among them.
func RunSuspensions(t *testing.T, h Harness) {
	t.Helper()
	t.Run("Suspensions", func(t *testing.T) { suspensionScenarios(t, h) })
}

// RunConcurrency runs the scenarios that race many goroutines through one
// Engine: concurrent rotations and seeds, and concurrent signal deliveries.
// It is its own entry point so that a driver can run it separately (for
// example with more goroutines or under -race only).
func RunConcurrency(t *testing.T, h Harness) {
	t.Helper()
	t.Run("Concurrency", func(t *testing.T) {
		t.Run("Keystore", func(t *testing.T) { keystoreConcurrencyScenarios(t, h) })
		t.Run("Signals", func(t *testing.T) { signalRaceScenarios(t, h) })
		t.Run("Lifecycle", func(t *testing.T) { lifecycleRaceScenarios(t, h) })
	})
}

// newEngine opens a fresh, empty backend through h and wraps it in an
// Engine with opts (engine.WithSignalLimits, for one); the backend is closed
// when t ends. The clock is non-nil exactly when h.ClockControl, standing at
// ClockStartMs.
func newEngine(t testing.TB, h Harness, opts ...engine.Option) (*engine.Engine, *Clock) {
	t.Helper()
	var clock *Clock
	if h.ClockControl {
		clock = NewClock(ClockStartMs)
	}
	b := h.Open(t, clock)
	require.NotNil(t, b, "conformance: Harness.Open returned a nil backend")
	e := engine.New(b, opts...)
	t.Cleanup(func() {
		assert.NoError(t, e.Close(), "conformance: closing the backend")
	})
	return e, clock
}

// ctx is the context of every suite call: tests end through t, not deadlines.
func ctx() context.Context { return context.Background() }

// fixture is a test-only kid and signing secret. The secrets are fixed so
// that tokens are reproducible across backends; they protect nothing.
type fixture struct {
	Kid    string
	Hex    string // lowercase hex of Secret
	Secret contracts.Secret
}

func newFixture(kid string, fill byte, n int) fixture {
	b := []byte(strings.Repeat(string([]byte{fill}), n))
	return fixture{Kid: kid, Hex: hex.EncodeToString(b), Secret: contracts.Secret(b)}
}

// The suite's fixtures: 32-byte secrets 0x01…, 0x02…, 0x03…, 0x04…, one
// whose hex has letters (0xcd…, for letter-case tests), and a 64-byte one,
// under distinct kids.
var (
	fxA    = newFixture("kid-a", 0x01, 32)
	fxB    = newFixture("kid-b", 0x02, 32)
	fxC    = newFixture("kid-c", 0x03, 32)
	fxD    = newFixture("kid-d", 0x04, 32)
	fxE    = newFixture("kid-e", 0xcd, 32)
	fxLong = newFixture("kid-long", 0xab, 64)
)

// fixtures lists every fixture, for the secret hygiene check.
var fixtures = []fixture{fxA, fxB, fxC, fxD, fxE, fxLong}

// withKid returns f's secret under another kid.
func (f fixture) withKid(kid string) fixture { f.Kid = kid; return f }

// withSecret returns f's kid with o's secret.
func (f fixture) withSecret(o fixture) fixture { f.Hex, f.Secret = o.Hex, o.Secret; return f }
