package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/backend/memory"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/httpapi"
	"github.com/stretchr/testify/require"
)

func TestAutoKidNaming(t *testing.T) {
	day := rotationSchedule{every: 24 * time.Hour}
	twoSec := rotationSchedule{every: 2 * time.Second}
	seven := rotationSchedule{every: 7 * time.Hour}
	at := time.Date(2026, 3, 14, 15, 9, 26, 535_000_000, time.FixedZone("CET", 3600))

	t.Run("PeriodsAreAlignedOnTheUnixEpochInUTC", func(t *testing.T) {
		require.Equal(t, time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC), day.periodStart(at))
		require.Equal(t, time.Date(2026, 3, 14, 14, 9, 26, 0, time.UTC), twoSec.periodStart(at))
		require.Equal(t, int64(0), seven.periodStart(at).UnixMilli()%(7*3600_000))
		require.Equal(t, time.UTC, day.periodStart(at).Location())
	})
	t.Run("ThePeriodsStartIsItsOwnPeriod", func(t *testing.T) {
		start := twoSec.periodStart(at)
		require.Equal(t, start, twoSec.periodStart(start))
		require.Equal(t, start, twoSec.periodStart(start.Add(2*time.Second-time.Millisecond)))
		require.Equal(t, start.Add(2*time.Second), twoSec.periodStart(start.Add(2*time.Second)))
	})
	t.Run("BeforeTheEpochFloorsDown", func(t *testing.T) {
		require.Equal(t, time.UnixMilli(-2000).UTC(), twoSec.periodStart(time.UnixMilli(-1)))
	})
	t.Run("KidIsAutoAndTheStartInUTC", func(t *testing.T) {
		kid := autoKid(day.periodStart(at))
		require.Equal(t, "auto-20260314T000000Z", kid)
		require.NoError(t, contracts.ValidateKid("kid", kid))
		require.Equal(t, "auto-20260314T140926Z", autoKid(twoSec.periodStart(at)))
	})
	t.Run("EveryServerComputesTheSameKid", func(t *testing.T) {
		a := autoKid(twoSec.periodStart(at))
		b := autoKid(twoSec.periodStart(at.In(time.UTC).Add(1400 * time.Millisecond)))
		require.Equal(t, a, b)
	})
	t.Run("ParseRoundTrips", func(t *testing.T) {
		start := twoSec.periodStart(at)
		got, ok := parseAutoKid(autoKid(start))
		require.True(t, ok)
		require.True(t, got.Equal(start))
	})
	t.Run("ParseRefusesOtherKids", func(t *testing.T) {
		for _, kid := range []string{"k1", "auto-", "auto-2026", "auto-20260314T000000Z0", "auto-20261314T000000Z",
			"Auto-20260314T000000Z", "auto-20260314T000000", "x-auto-20260314T000000Z"} {
			_, ok := parseAutoKid(kid)
			require.False(t, ok, kid)
		}
	})
}

func TestNewRotationSchedule(t *testing.T) {
	for _, c := range []struct {
		name    string
		every   time.Duration
		graceMs int64
		want    string // "" when valid
	}{
		{"OneSecondAndEqualGrace", time.Second, 1000, ""},
		{"DayWithDefaultGrace", 24 * time.Hour, contracts.DefaultGraceMs, ""},
		{"Zero", 0, 1000, "--every must be at least 1s"},
		{"BelowOneSecond", 500 * time.Millisecond, 1000, "--every must be at least 1s"},
		{"NotWholeSeconds", 1500 * time.Millisecond, 10_000, "--every must be a whole number of seconds"},
		{"GraceBelowPeriod", 48 * time.Hour, contracts.DefaultGraceMs, "--grace (24h0m0s) must be at least --every (48h0m0s)"},
		{"GraceAboveMax", time.Second, contracts.MaxGraceMs + 1, "--grace must be at most"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := newRotationSchedule("--every", c.every, "--grace", c.graceMs)
			if c.want == "" {
				require.NoError(t, err)
				require.Equal(t, rotationSchedule{every: c.every, graceMs: c.graceMs}, s)
				return
			}
			require.ErrorContains(t, err, c.want)
			require.ErrorAs(t, err, new(errUsage))
		})
	}
}

// sharedBackend is a memory backend several Engines open, as servers share
// a store; only the test closes it.
type sharedBackend struct{ *memory.Backend }

func (sharedBackend) Close() error { return nil }

// scheduleSecret is the secret the tests seed with.
var scheduleSecret = contracts.Secret(bytes.Repeat([]byte{0x5a}, 32))

func newScheduleEngine(t *testing.T, b driver.Backend) *engine.Engine {
	t.Helper()
	e := engine.New(b)
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func seedK1(t *testing.T, e *engine.Engine) {
	t.Helper()
	_, err := e.Seed(context.Background(), contracts.SeedArgs{Kid: "k1", Secret: scheduleSecret})
	require.NoError(t, err)
}

func currentKid(t *testing.T, e *engine.Engine) string {
	t.Helper()
	kids, err := e.ListKids(context.Background())
	require.NoError(t, err)
	require.NotNil(t, kids.Partitions[0].CurrentKid)
	return *kids.Partitions[0].CurrentKid
}

func TestScheduleRotate(t *testing.T) {
	ctx := context.Background()
	s := rotationSchedule{every: time.Hour, graceMs: 2 * 3600_000}
	start := s.periodStart(time.Now())
	kid := autoKid(start)
	fresh := func() contracts.Secret {
		sec, err := drawSecret()
		require.NoError(t, err)
		return sec
	}

	t.Run("AnEmptyKeystoreIsNotSeeded", func(t *testing.T) {
		e := newScheduleEngine(t, memory.New())
		_, _, err := s.rotate(ctx, e, start, fresh())
		require.ErrorIs(t, err, contracts.ErrHMACSecretNotInitialized)
		kids, err := e.ListKids(ctx)
		require.NoError(t, err)
		require.Nil(t, kids.Partitions[0].CurrentKid, "scheduled rotation never seeds")
	})
	t.Run("AnOlderKidIsRotatedAwayWithTheGrace", func(t *testing.T) {
		e := newScheduleEngine(t, memory.New())
		seedK1(t, e)
		got, res, err := s.rotate(ctx, e, start, fresh())
		require.NoError(t, err)
		require.Equal(t, kid, got)
		require.Len(t, res.Entries, 1)
		require.Equal(t, contracts.RotateRotated, res.Entries[0].Outcome.Outcome)
		require.Equal(t, "k1", *res.Entries[0].Outcome.PreviousKid)
		kids, err := e.ListKids(ctx)
		require.NoError(t, err)
		require.Equal(t, kid, *kids.Partitions[0].CurrentKid)
		require.Len(t, kids.Partitions[0].Verifying, 1)
		require.InDelta(t, time.Now().UnixMilli()+s.graceMs, kids.Partitions[0].Verifying[0].ExpiresAtMs, 5000)
	})
	t.Run("ThePeriodsKidCurrentIsNoopWithoutAWrite", func(t *testing.T) {
		e := newScheduleEngine(t, memory.New())
		seedK1(t, e)
		_, _, err := s.rotate(ctx, e, start, fresh())
		require.NoError(t, err)
		before, _ := e.ListKids(ctx)
		_, res, err := s.rotate(ctx, e, start, fresh()) // another secret: RotateAll would conflict
		require.NoError(t, err)
		require.Equal(t, `{"entries":[{"partition":0,"outcome":{"outcome":"noop","kid":"`+kid+`"},"error":null}]}`, envelopeJSON(t, res))
		after, _ := e.ListKids(ctx)
		require.Equal(t, before, after)
	})
	t.Run("ALaterPeriodsKidIsNeverRotatedBack", func(t *testing.T) {
		e := newScheduleEngine(t, memory.New())
		seedK1(t, e)
		_, _, err := s.rotate(ctx, e, start.Add(time.Hour), fresh())
		require.NoError(t, err)
		_, res, err := s.rotate(ctx, e, start, fresh()) // a server whose clock is behind
		require.NoError(t, err)
		require.Equal(t, contracts.RotateNoop, res.Entries[0].Outcome.Outcome)
		require.Equal(t, autoKid(start.Add(time.Hour)), currentKid(t, e))
	})
	t.Run("LosingTheRaceIsNoopForThePeriodsKid", func(t *testing.T) {
		got := settleConflicts(contracts.RotateAllResult{Entries: []contracts.RotateEntry{
			{Partition: 0, Error: contracts.ErrRotationConflict.With("new_kid: %q is current with another secret", kid)},
			{Partition: 1, Error: contracts.ErrBackendUnreachable.With("down")},
		}}, kid)
		require.Equal(t, contracts.RotateNoop, got.Entries[0].Outcome.Outcome)
		require.Equal(t, kid, got.Entries[0].Outcome.Kid)
		require.Nil(t, got.Entries[0].Error)
		require.Equal(t, contracts.CodeBackendUnreachable, got.Entries[1].Error.Code, "other failures stay failures")
	})
	t.Run("ConcurrentCallersInstallOneKid", func(t *testing.T) {
		b := sharedBackend{memory.New()}
		seedK1(t, newScheduleEngine(t, b))
		var wg sync.WaitGroup
		results := make([]contracts.RotateAllResult, 8)
		for i := range results {
			wg.Go(func() {
				var err error
				_, results[i], err = s.rotate(ctx, newScheduleEngine(t, b), start, fresh())
				require.NoError(t, err)
			})
		}
		wg.Wait()
		rotated := 0
		for _, r := range results {
			require.False(t, r.Failed())
			if r.Entries[0].Outcome.Outcome == contracts.RotateRotated {
				rotated++
			}
		}
		require.Equal(t, 1, rotated)
	})
}

func envelopeJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

// auditLog captures audit lines as JSON, safely for concurrent writers.
type auditLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *auditLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *auditLog) lines(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), line)
		out = append(out, m)
	}
	return out
}

// longHex is a run of hex digits as long as a secret's or a MAC's.
var longHex = regexp.MustCompile(`[0-9a-fA-F]{32,}`)

// TestSchedulerRotatesOncePerPeriod runs two schedulers, as two servers, on
// one store with a 1 s period for a little over two periods: every period
// gets exactly one rotation, the other scheduler answering noop, and every
// attempt logs one audit line without secret material.
func TestSchedulerRotatesOncePerPeriod(t *testing.T) {
	b := sharedBackend{memory.New()}
	seedK1(t, newScheduleEngine(t, b))
	s, err := newRotationSchedule("--rotate-every", time.Second, "--grace", 10_000)
	require.NoError(t, err)
	var logs auditLog
	audit := httpapi.NewKeystoreAudit(slog.New(slog.NewJSONHandler(&logs, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	var stops []func()
	for range 2 {
		r := &rotationScheduler{e: newScheduleEngine(t, b), audit: audit, log: slog.New(slog.DiscardHandler), now: time.Now}
		stops = append(stops, startScheduler(ctx, &s, r))
	}
	time.Sleep(2300 * time.Millisecond)
	cancel()
	for _, stop := range stops {
		stop()
	}

	rotatedKids := map[string]int{}
	for _, line := range logs.lines(t) {
		require.Equal(t, httpapi.AuditMessage, line["msg"])
		require.Equal(t, "rotate_all", line["op"])
		require.Equal(t, "scheduler", line["caller"])
		require.Equal(t, float64(10_000), line["grace_ms"])
		kid, _ := line["kid"].(string)
		_, ok := parseAutoKid(kid)
		require.True(t, ok, "kid %q", kid)
		switch line["outcome"] {
		case contracts.RotateRotated:
			rotatedKids[kid]++
		case contracts.RotateNoop, contracts.CodeCanceled: // the loser of a period; an attempt cut by the end of the test
		default:
			t.Fatalf("outcome %v: %v", line["outcome"], line)
		}
	}
	require.GreaterOrEqual(t, len(rotatedKids), 3, "the start-up period and two boundaries: %v", rotatedKids)
	for kid, n := range rotatedKids {
		require.Equal(t, 1, n, "period %s rotated %d times", kid, n)
	}
	require.False(t, longHex.MatchString(logs.buf.String()), "an audit line holds hex as long as a secret:\n%s", logs.buf.String())
}
