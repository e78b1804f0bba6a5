package cli

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/httpapi"
)

// Scheduled rotation (docs/spec.md §8.7): `ff serve --rotate-every D` and
// `ff rotate --auto --every D` rotate to a kid named after the current
// period, with a freshly generated secret, so that every server and cron
// job computes the same kid and exactly one rotation per period wins.
//
// Periods are aligned on the Unix epoch: the period of an instant t starts
// at floor(t / D) × D, and its kid is "auto-" followed by that start in UTC
// as yyyymmddThhmmssZ (auto-20260101T000000Z). The kid is current for the
// period, then verifies for the grace. A caller that finds the period's kid
// (or a later period's) already current does nothing; one that loses the
// race gets noop or rotation_conflict for the kid and counts the period as
// done, answering noop for those partitions.

// MinRotationPeriod is the shortest rotation period ff accepts.
const MinRotationPeriod = time.Second

// autoKidPrefix starts every kid a scheduled rotation installs, and
// autoKidLayout formats the period's start after it.
const (
	autoKidPrefix = "auto-"
	autoKidLayout = "20060102T150405Z"
)

// secretBytes is the length of a generated secret.
const secretBytes = 32

// rotationSchedule is a validated rotation period and grace.
type rotationSchedule struct {
	every   time.Duration
	graceMs int64
}

// newRotationSchedule checks a period and a grace: the period is a whole
// number of seconds, at least MinRotationPeriod, and the grace is at least
// the period (a token signed just before a rotation must outlive the next
// period) and at most contracts.MaxGraceMs. everyFlag and graceFlag name
// the flags in the usage error.
func newRotationSchedule(everyFlag string, every time.Duration, graceFlag string, graceMs int64) (rotationSchedule, error) {
	switch {
	case every < MinRotationPeriod:
		return rotationSchedule{}, usageError("%s must be at least %s", everyFlag, MinRotationPeriod)
	case every%time.Second != 0:
		return rotationSchedule{}, usageError("%s must be a whole number of seconds (kids are named after the period's start, to the second)", everyFlag)
	case graceMs < every.Milliseconds():
		return rotationSchedule{}, usageError("%s (%s) must be at least %s (%s): tokens signed just before a rotation must keep verifying through the next period",
			graceFlag, time.Duration(graceMs)*time.Millisecond, everyFlag, every)
	case graceMs > contracts.MaxGraceMs:
		return rotationSchedule{}, usageError("%s must be at most %d ms", graceFlag, int64(contracts.MaxGraceMs))
	}
	return rotationSchedule{every: every, graceMs: graceMs}, nil
}

// periodStart returns the start of the period holding now, in UTC.
func (s rotationSchedule) periodStart(now time.Time) time.Time {
	ms, p := now.UnixMilli(), s.every.Milliseconds()
	start := ms - ms%p
	if ms%p < 0 {
		start -= p
	}
	return time.UnixMilli(start).UTC()
}

// autoKid is the kid of the period that starts at start.
func autoKid(start time.Time) string { return autoKidPrefix + start.UTC().Format(autoKidLayout) }

// parseAutoKid returns the period start a kid was named after, and false
// when the kid is not one autoKid makes.
func parseAutoKid(kid string) (time.Time, bool) {
	rest, ok := strings.CutPrefix(kid, autoKidPrefix)
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(autoKidLayout, rest)
	if err != nil || autoKid(t) != kid {
		return time.Time{}, false
	}
	return t, true
}

// drawSecret returns a fresh secret from crypto/rand. The caller clears it
// when done; it is never printed, logged or written anywhere but to the
// backend through RotateAll.
func drawSecret() (contracts.Secret, error) {
	b := make([]byte, secretBytes)
	if _, err := rand.Read(b); err != nil {
		return nil, errors.New("drawing a random secret failed")
	}
	return contracts.Secret(b), nil
}

// errNotSeeded answers a scheduled rotation on a keystore with a partition
// that has no current kid: scheduling never seeds.
func errNotSeeded() error {
	return contracts.ErrHMACSecretNotInitialized.With("the keystore has no current kid: seed it first (scheduled rotation never seeds)")
}

// rotate makes the period starting at start current on every partition,
// with secret, unless it already is: it reads the keystore (list_kids)
// and, when a partition's current kid is neither the period's kid nor a
// later period's, calls RotateAll. It answers the rotate_all envelope:
//
//   - nothing to do (every current kid is the period's, or one is a later
//     period's because another caller's clock is ahead): noop entries
//     naming each partition's current kid, and no write;
//   - after RotateAll, an entry whose error is rotation_conflict (another
//     caller installed the kid with its own secret, or rotated past it)
//     becomes noop for the kid: the period is done;
//   - a partition without a current kid: hmac_secret_not_initialized, with
//     no write (scheduling never seeds).
//
// Idempotent and safe concurrently: whoever runs it, each period gets one
// kid. Re-running it with the same secret repairs a partial rotation.
func (s rotationSchedule) rotate(ctx context.Context, e *engine.Engine, start time.Time, secret contracts.Secret) (string, contracts.RotateAllResult, error) {
	kid := autoKid(start)
	kids, err := e.ListKids(ctx)
	if err != nil {
		return kid, contracts.RotateAllResult{}, err
	}
	due, err := rotationDue(kids, start)
	if err != nil || !due {
		return kid, noopEntries(kids), err
	}
	res, err := e.RotateAll(ctx, contracts.RotateArgs{NewKid: kid, NewSecret: secret, GraceMs: s.graceMs})
	if err != nil {
		return kid, res, err
	}
	return kid, settleConflicts(res, kid), nil
}

// rotationDue reports whether a rotation to the period starting at start
// is needed: some partition's current kid is older than the period's, and
// none is a later period's.
func rotationDue(kids contracts.ListKidsResult, start time.Time) (bool, error) {
	due := false
	for _, p := range kids.Partitions {
		if p.CurrentKid == nil {
			return false, errNotSeeded()
		}
		at, ok := parseAutoKid(*p.CurrentKid)
		switch {
		case ok && at.After(start):
			return false, nil
		case !ok || at.Before(start):
			due = true
		}
	}
	return due, nil
}

// noopEntries answers noop for every partition, naming its current kid.
func noopEntries(kids contracts.ListKidsResult) contracts.RotateAllResult {
	res := contracts.RotateAllResult{Entries: make([]contracts.RotateEntry, 0, len(kids.Partitions))}
	for _, p := range kids.Partitions {
		out := contracts.RotateOutcome{Outcome: contracts.RotateNoop}
		if p.CurrentKid != nil {
			out.Kid = *p.CurrentKid
		}
		res.Entries = append(res.Entries, contracts.RotateEntry{Partition: p.Partition, Outcome: &out})
	}
	return res
}

// settleConflicts turns rotation_conflict entries into noop for kid.
func settleConflicts(res contracts.RotateAllResult, kid string) contracts.RotateAllResult {
	out := contracts.RotateAllResult{Entries: make([]contracts.RotateEntry, len(res.Entries))}
	for i, e := range res.Entries {
		if e.Error != nil && e.Error.Code == contracts.CodeRotationConflict {
			e = contracts.RotateEntry{Partition: e.Partition, Outcome: &contracts.RotateOutcome{Outcome: contracts.RotateNoop, Kid: kid}}
		}
		out.Entries[i] = e
	}
	return out
}

// rotationScheduler is ff serve's scheduled rotation: at start-up and at
// every period boundary it runs rotationSchedule.rotate for the period,
// retrying a failed attempt within the period.
type rotationScheduler struct {
	e     *engine.Engine
	sched rotationSchedule
	audit *httpapi.KeystoreAudit
	log   *slog.Logger
	now   func() time.Time
}

// schedulerCaller is the caller the scheduler's audit lines name.
var schedulerCaller = httpapi.Caller{Via: "scheduler", Command: "serve --rotate-every"}

// run rotates for each period until ctx ends.
func (r *rotationScheduler) run(ctx context.Context) {
	var last time.Time
	for ctx.Err() == nil {
		start := r.sched.periodStart(r.now())
		if !start.After(last) && !last.IsZero() {
			// Woken before the boundary (a clock step): wait for it.
			sleep(ctx, last.Add(r.sched.every).Sub(r.now()))
			continue
		}
		last = start
		r.period(ctx, start)
		sleep(ctx, start.Add(r.sched.every).Sub(r.now()))
	}
}

// period rotates for the period starting at start with one secret drawn
// for it, so that a retry after a partial failure is noop where it already
// succeeded. Each attempt logs one audit line. It gives up for the period
// on success, on a keystore that is not seeded (the next period looks
// again), when ctx ends, and when the next retry would fall past the
// period's end.
func (r *rotationScheduler) period(ctx context.Context, start time.Time) {
	secret, err := drawSecret()
	if err != nil {
		r.log.Error("scheduled rotation: "+err.Error()+"; the period is skipped", "period_start", start.Format(time.RFC3339))
		return
	}
	defer clear(secret)
	end := start.Add(r.sched.every)
	for {
		kid, res, err := r.sched.rotate(ctx, r.e, start, secret)
		r.audit.RotateAll(ctx, schedulerCaller, kid, r.sched.graceMs, res, err)
		if err == nil && !res.Failed() || errors.Is(err, contracts.ErrHMACSecretNotInitialized) || ctx.Err() != nil {
			return
		}
		wait := r.retryDelay()
		if !r.now().Add(wait).Before(end) || !sleep(ctx, wait) {
			return
		}
	}
}

// retryDelay is the pause before retrying a failed attempt: a tenth of the
// period, from 100 ms to 30 s.
func (r *rotationScheduler) retryDelay() time.Duration {
	return min(max(r.sched.every/10, 100*time.Millisecond), 30*time.Second)
}

// sleep waits for d or until ctx ends, and reports whether the full d
// passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
