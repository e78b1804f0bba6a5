package valkey

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/engine"
)

// budgetError is the signal_limit_exceeded driver.CheckDeliverable raises
// for used under limits: the error every backend answers, detail included.
func budgetError(t *testing.T, used driver.SignalBudget, limits contracts.SignalLimits, payload string) *contracts.Error {
	t.Helper()
	err := driver.CheckDeliverable(false, nil, used, contracts.DeliverSignalArgs{Limits: limits, Payload: []byte(payload)}, 0)
	require.Error(t, err, "CheckDeliverable(%+v) under %+v", used, limits)
	return contracts.AsError(err)
}

// requireSameError checks that err is want, detail and all.
func requireSameError(t *testing.T, want *contracts.Error, err error, msgAndArgs ...any) {
	t.Helper()
	var got *contracts.Error
	require.True(t, errors.As(err, &got), "error %v is not a contract error", err)
	require.Equal(t, want.Code, got.Code, msgAndArgs...)
	require.Equal(t, want.Kind, got.Kind, msgAndArgs...)
	require.Equal(t, want.Detail, got.Detail, msgAndArgs...)
}

// suspendAll suspends id on keys plus a waitpoint "never" that no test
// signals, so that no delivery resumes it (condition all).
func suspendAll(t *testing.T, e ops, id string, keys ...string) contracts.SuspendOutcome {
	t.Helper()
	a := contracts.SuspendArgs{ExecutionID: id, Condition: contracts.ConditionAll}
	for _, k := range append(keys, "never") {
		a.Waitpoints = append(a.Waitpoints, contracts.WaitpointSpec{Key: k})
	}
	out, err := e.Suspend(bg, a)
	require.NoError(t, err, "suspend %s", id)
	return out
}

// deliverTo delivers a signal with payload (empty: none) to the waitpoint
// of s with key, under limits.
func deliverTo(e ops, s contracts.SuspendOutcome, key, payload, idem string, limits contracts.SignalLimits) (contracts.DeliverSignalOutcome, error) {
	for _, w := range s.Waitpoints {
		if w.WaitpointKey == key {
			a := contracts.DeliverSignalArgs{ExecutionID: s.ExecutionID, WaitpointID: w.WaitpointID, Token: w.Token,
				Name: "go", IdempotencyKey: idem, Limits: limits}
			if payload != "" {
				a.Payload = []byte(payload)
			}
			return e.DeliverSignal(bg, a)
		}
	}
	return contracts.DeliverSignalOutcome{}, fmt.Errorf("no waitpoint %q", key)
}

// counters reads the budget counters of the execution's hash and of its
// waitpoint with key: signals of the waitpoint, signals and payload bytes
// of the suspension.
func counters(t *testing.T, b *Backend, s contracts.SuspendOutcome, key string) (wpSignals, signals, payloadBytes int64) {
	t.Helper()
	p := driver.PartitionOf(s.ExecutionID, b.parts)
	f, err := b.client.HMGet(bg, b.key(p, "x:"+s.ExecutionID), "nsig", "nbytes").Result()
	require.NoError(t, err)
	for _, w := range s.Waitpoints {
		if w.WaitpointKey == key {
			wpSignals = storedSignalCount(t, b, s.ExecutionID, w.WaitpointID)
		}
	}
	signals, _ = strconv.ParseInt(fmt.Sprint(f[0]), 10, 64)
	payloadBytes, _ = strconv.ParseInt(fmt.Sprint(f[1]), 10, 64)
	return wpSignals, signals, payloadBytes
}

// storedSignalCount reads the signal count of waitpoint wid of execution
// id as stored, in either layout (see ff_wp in lua/prelude.lua): its
// inline field of x:E, "<32 bytes><count>:<key>", or the n of its hash.
func storedSignalCount(t *testing.T, b *Backend, id, wid string) int64 {
	t.Helper()
	p := driver.PartitionOf(id, b.parts)
	v, err := b.client.HGet(bg, b.key(p, "x:"+id), "w:"+wid).Result()
	if err == redis.Nil {
		n, err := b.client.HGet(bg, b.key(p, "w:"+wid), "n").Int64()
		require.NoError(t, err)
		return n
	}
	require.NoError(t, err)
	require.Greater(t, len(v), 32, "inline waitpoint %s", wid)
	count, _, ok := strings.Cut(v[32:], ":")
	require.True(t, ok, "inline waitpoint %s", wid)
	n, err := strconv.ParseInt(count, 10, 64)
	require.NoError(t, err)
	return n
}

// Each budget of docs/spec.md §8.3 is enforced where the signal is
// recorded, in the order of driver.CheckDeliverable and with its detail;
// a rejected delivery records nothing, a duplicate still answers duplicate,
// and a new suspension starts with the whole budget.
func TestSignalBudgets(t *testing.T) {
	forEachServer(t, func(t *testing.T, s server) {
		_, b := seededEngine(t, s, 256, nil)
		limits := contracts.SignalLimits{PerWaitpoint: 3, PerSuspension: 5, PayloadBytes: 40}
		e := engine.New(b, engine.WithSignalLimits(limits))

		t.Run("PerWaitpoint", func(t *testing.T) {
			// given a waitpoint holding its 3 signals
			sus := suspendAll(t, e, "budget-wp", "a", "b")
			for i := range 3 {
				_, err := deliverTo(e, sus, "a", "", "k"+strconv.Itoa(i), limits)
				require.NoError(t, err)
			}
			// when a fourth is delivered to it, then it is refused; the other waitpoint still takes one
			_, err := deliverTo(e, sus, "a", "", "k3", limits)
			requireSameError(t, budgetError(t, driver.SignalBudget{WaitpointSignals: 3}, limits, ""), err, "fourth signal")
			d, err := deliverTo(e, sus, "a", "", "k0", limits)
			require.NoError(t, err)
			require.Equal(t, contracts.OutcomeDuplicate, d.Outcome, "a recorded key past the budget")
			_, err = deliverTo(e, sus, "b", "", "", limits)
			require.NoError(t, err)
			wp, n, _ := counters(t, b, sus, "a")
			require.Equal(t, [2]int64{3, 4}, [2]int64{wp, n}, "counters: waitpoint a, suspension")
		})

		t.Run("PerSuspension", func(t *testing.T) {
			// given a suspension holding its 5 signals over two waitpoints
			sus := suspendAll(t, e, "budget-susp", "a", "b", "c")
			for _, k := range []string{"a", "a", "a", "b", "b"} {
				_, err := deliverTo(e, sus, k, "", "", limits)
				require.NoError(t, err)
			}
			// when a sixth is delivered to a waitpoint with room, then it is refused
			_, err := deliverTo(e, sus, "c", "", "", limits)
			requireSameError(t, budgetError(t, driver.SignalBudget{SuspensionSignals: 5}, limits, ""), err, "sixth signal")
			// and a waitpoint at its own budget answers the waitpoint's error first
			_, err = deliverTo(e, sus, "a", "", "", limits)
			requireSameError(t, budgetError(t, driver.SignalBudget{WaitpointSignals: 3, SuspensionSignals: 5}, limits, ""), err, "full waitpoint")
			o, err := e.ObserveSignals(bg, contracts.ObserveSignalsArgs{ExecutionID: sus.ExecutionID})
			require.NoError(t, err)
			require.Len(t, o.Signals, 5)
		})

		t.Run("PayloadBytes", func(t *testing.T) {
			// given payloads of 16 and 16 bytes, then one of 8 that fills the 40 exactly
			sus := suspendAll(t, e, "budget-bytes", "a", "b", "c")
			for i, p := range []string{`{"n":"01234567"}`, `{"n":"abcdefgh"}`, `"123456"`} {
				_, err := deliverTo(e, sus, []string{"a", "b", "c"}[i], p, "", limits)
				require.NoError(t, err, "payload %d (%d bytes)", i, len(p))
			}
			_, _, bytes := counters(t, b, sus, "a")
			require.EqualValues(t, 40, bytes)
			// when one more byte is delivered, then it is refused; a signal without payload still fits
			_, err := deliverTo(e, sus, "a", "1", "", limits)
			requireSameError(t, budgetError(t, driver.SignalBudget{PayloadBytes: 40}, limits, "1"), err, "one byte more")
			_, err = deliverTo(e, sus, "b", "", "", limits)
			require.NoError(t, err, "no payload")
			_, n, bytes := counters(t, b, sus, "a")
			require.Equal(t, [2]int64{4, 40}, [2]int64{n, bytes})
		})

		t.Run("NewSuspensionStartsAfresh", func(t *testing.T) {
			// given an execution that used its waitpoint's whole budget, then resumed and was claimed
			sus, err := e.Suspend(bg, contracts.SuspendArgs{ExecutionID: "budget-again", Condition: contracts.ConditionAll,
				Waitpoints: []contracts.WaitpointSpec{{Key: "a"}, {Key: "b"}}})
			require.NoError(t, err)
			for i := range 3 {
				_, err := deliverTo(e, sus, "a", `"0123456789"`, "", limits)
				require.NoError(t, err, "signal %d", i)
			}
			d, err := deliverTo(e, sus, "b", "", "", limits)
			require.NoError(t, err)
			require.True(t, d.Resumed)
			c, err := e.ClaimResumedExecution(bg, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 60000})
			require.NoError(t, err)
			require.Equal(t, sus.ExecutionID, c.ExecutionID)
			// when it suspends again, then every budget is whole again
			again, err := e.Suspend(bg, contracts.SuspendArgs{ExecutionID: sus.ExecutionID, Condition: contracts.ConditionAll,
				Waitpoints: []contracts.WaitpointSpec{{Key: "a"}, {Key: "never"}}, LeaseID: &c.LeaseID})
			require.NoError(t, err)
			wp, n, bytes := counters(t, b, again, "a")
			require.Equal(t, [3]int64{0, 0, 0}, [3]int64{wp, n, bytes})
			for i := range 3 {
				_, err := deliverTo(e, again, "a", `"0123456789"`, "", limits)
				require.NoError(t, err, "signal %d of the new suspension", i)
			}
		})

		t.Run("SuspensionOpenedBeforeTheCounter", func(t *testing.T) {
			// given a suspension whose hash has no nbytes, as the driver wrote them
			// before the payload budget, holding 16+16 payload bytes
			sus := suspendAll(t, e, "budget-legacy", "a", "b")
			for _, p := range []string{`{"n":"01234567"}`, `{"n":"abcdefgh"}`} {
				_, err := deliverTo(e, sus, "b", p, "", limits)
				require.NoError(t, err)
			}
			p := driver.PartitionOf(sus.ExecutionID, b.parts)
			require.NoError(t, b.client.HDel(bg, b.key(p, "x:"+sus.ExecutionID), "nbytes").Err())
			// when payloads are delivered, then the stored ones count: 9 bytes more are refused, 8 fit
			_, err := deliverTo(e, sus, "a", `"1234567"`, "", limits)
			requireSameError(t, budgetError(t, driver.SignalBudget{PayloadBytes: 32}, limits, `"1234567"`), err, "9 bytes over 32")
			_, err = deliverTo(e, sus, "a", `"123456"`, "", limits)
			require.NoError(t, err, "8 bytes over 32")
			_, n, bytes := counters(t, b, sus, "a")
			require.Equal(t, [2]int64{3, 40}, [2]int64{n, bytes}, "the counter is stored from then on")
			_, err = deliverTo(e, sus, "a", "1", "", limits)
			requireSameError(t, budgetError(t, driver.SignalBudget{PayloadBytes: 40}, limits, "1"), err, "full")
		})

		t.Run("DefaultsWithoutLimits", func(t *testing.T) {
			// given a delivery whose Limits are zero, then the defaults apply: a
			// payload one byte over the default budget is refused with its detail
			sus := suspendAll(t, b, "budget-default", "a")
			big := `"` + strings.Repeat("0", contracts.PayloadBudgetBytes-1) + `"`
			_, err := deliverTo(b, sus, "a", big, "", contracts.SignalLimits{})
			requireSameError(t, budgetError(t, driver.SignalBudget{}, contracts.SignalLimits{}, big), err, "a payload over 1 MiB")
		})
	})
}

// Concurrent deliveries across a budget: exactly the budget is accepted,
// every other delivery is signal_limit_exceeded, and the counters kept in
// the hashes equal what was recorded (docs/spec.md §8.3: the check and the
// write are one atomic step).
func TestSignalBudgetsExactUnderConcurrency(t *testing.T) {
	forEachServer(t, func(t *testing.T, s server) {
		_, b := seededEngine(t, s, 16, nil)
		const goroutines, each = 16, 8

		// race sends goroutines×each deliveries, delivery i to keys[i % len(keys)]
		race := func(sus contracts.SuspendOutcome, keys []string, payload string, limits contracts.SignalLimits) (accepted int, exceeded map[string]int) {
			var mu sync.Mutex
			exceeded = map[string]int{}
			var wg sync.WaitGroup
			for g := range goroutines {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range each {
						n := g*each + i
						_, err := deliverTo(b, sus, keys[n%len(keys)], payload, "race-"+strconv.Itoa(n), limits)
						mu.Lock()
						var ce *contracts.Error
						switch {
						case err == nil:
							accepted++
						case errors.As(err, &ce) && errors.Is(err, contracts.ErrSignalLimitExceeded):
							exceeded[ce.Detail]++
						default:
							t.Errorf("delivery %d: %v", n, err)
						}
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			return accepted, exceeded
		}
		observed := func(sus contracts.SuspendOutcome) []contracts.Signal {
			o, err := b.ObserveSignals(bg, contracts.ObserveSignalsArgs{ExecutionID: sus.ExecutionID, Limit: contracts.MaxObserveLimit})
			require.NoError(t, err)
			return o.Signals
		}

		t.Run("PerWaitpoint", func(t *testing.T) {
			limits := contracts.SignalLimits{PerWaitpoint: 20}
			sus := suspendAll(t, b, "race-wp", "a")
			accepted, exceeded := race(sus, []string{"a"}, "", limits)
			detail := budgetError(t, driver.SignalBudget{WaitpointSignals: 20}, limits, "").Detail
			require.Equal(t, 20, accepted)
			require.Equal(t, map[string]int{detail: goroutines*each - 20}, exceeded)
			wp, n, _ := counters(t, b, sus, "a")
			require.Equal(t, [2]int64{20, 20}, [2]int64{wp, n})
			require.Len(t, observed(sus), 20)
		})

		t.Run("PerSuspension", func(t *testing.T) {
			limits := contracts.SignalLimits{PerWaitpoint: 30, PerSuspension: 50}
			sus := suspendAll(t, b, "race-susp", "a", "b", "c")
			accepted, exceeded := race(sus, []string{"a", "b", "c"}, "", limits)
			require.Equal(t, 50, accepted)
			total := 0
			for _, n := range exceeded {
				total += n
			}
			require.Equal(t, goroutines*each-50, total)
			var sum int64
			for _, k := range []string{"a", "b", "c"} {
				wp, _, _ := counters(t, b, sus, k)
				require.LessOrEqual(t, wp, int64(30), "waitpoint %s", k)
				sum += wp
			}
			_, n, _ := counters(t, b, sus, "a")
			require.Equal(t, [2]int64{50, 50}, [2]int64{sum, n})
			require.Len(t, observed(sus), 50)
		})

		t.Run("PayloadBytes", func(t *testing.T) {
			payload := `"12345678"` // 10 bytes
			limits := contracts.SignalLimits{PayloadBytes: 1000}
			sus := suspendAll(t, b, "race-bytes", "a", "b", "c", "d")
			accepted, exceeded := race(sus, []string{"a", "b", "c", "d"}, payload, limits)
			detail := budgetError(t, driver.SignalBudget{PayloadBytes: 1000}, limits, payload).Detail
			require.Equal(t, 100, accepted)
			require.Equal(t, map[string]int{detail: goroutines*each - 100}, exceeded)
			_, n, bytes := counters(t, b, sus, "a")
			require.Equal(t, [2]int64{100, 1000}, [2]int64{n, bytes})
			var sum int
			for _, sig := range observed(sus) {
				sum += len(sig.Payload)
			}
			require.Equal(t, 1000, sum, "payload bytes recorded")
		})
	})
}

// The error reply of ff_record maps to the detail driver.CheckDeliverable
// words, for every budget and limit; a reply without a budget (written by
// an older script) is the suspension's default.
func TestSignalLimitErrorReply(t *testing.T) {
	cases := []struct {
		reply string
		used  driver.SignalBudget
		l     contracts.SignalLimits
	}{
		{"waitpoint 1000", driver.SignalBudget{WaitpointSignals: 1000}, contracts.SignalLimits{PerWaitpoint: 1000}},
		{"waitpoint 1", driver.SignalBudget{WaitpointSignals: 1}, contracts.SignalLimits{PerWaitpoint: 1}},
		{"suspension 10000", driver.SignalBudget{SuspensionSignals: 10000}, contracts.SignalLimits{}},
		{"suspension 7", driver.SignalBudget{SuspensionSignals: 7}, contracts.SignalLimits{PerSuspension: 7}},
		{"payload 1048576", driver.SignalBudget{PayloadBytes: 1048576}, contracts.SignalLimits{}},
		{"payload 10485760", driver.SignalBudget{PayloadBytes: 10485760}, contracts.SignalLimits{PayloadBytes: 10485760}},
		{"", driver.SignalBudget{SuspensionSignals: contracts.SignalLimit}, contracts.SignalLimits{}},
	}
	for _, c := range cases {
		t.Run(c.reply, func(t *testing.T) {
			err := interpretServerError(errors.New("x"), "ERR FF signal_limit_exceeded "+c.reply)
			requireSameError(t, budgetError(t, c.used, c.l, "x"), err)
		})
	}
}
