package main

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPercentileNearestRank(t *testing.T) {
	samples := make([]time.Duration, 100)
	for i := range samples {
		samples[i] = time.Duration(i + 1)
	}
	require.Equal(t, time.Duration(50), percentile(samples, 0.5))
	require.Equal(t, time.Duration(99), percentile(samples, 0.99))
	require.Equal(t, time.Duration(100), percentile(samples, 1))
	require.Equal(t, time.Duration(7), percentile([]time.Duration{7}, 0.99))
	require.Zero(t, percentile(nil, 0.5))
}

func TestRunCountCallsEachSeqOnce(t *testing.T) {
	seen := make([]atomic.Int32, 50)
	r := runCount(context.Background(), 4, len(seen), func(_ context.Context, _, seq int) error {
		seen[seq].Add(1)
		if seq%10 == 0 {
			return errors.New("failed")
		}
		return nil
	})
	for i := range seen {
		require.Equal(t, int32(1), seen[i].Load(), "seq %d", i)
	}
	require.Equal(t, int64(45), r.Ops)
	require.Equal(t, int64(5), r.Errors)
	require.EqualError(t, r.FirstErr, "failed")
}

func TestRunCountUntilStopsAtTheDeadline(t *testing.T) {
	r := runCountUntil(context.Background(), 2, 1_000_000, time.Now().Add(20*time.Millisecond), func(context.Context, int, int) error {
		time.Sleep(time.Millisecond)
		return nil
	})
	require.Greater(t, r.Ops, int64(0))
	require.Less(t, r.Ops, int64(1000))
}

func TestRunForCountsNothingCutShortByCancellation(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var calls atomic.Int64
	r := runFor(ctx, 3, time.Hour, func(ctx context.Context, _, _ int) error {
		if calls.Add(1) == 3 { // every client is in a call
			cancel()
		}
		<-ctx.Done()
		return ctx.Err()
	})
	require.Zero(t, r.Errors)
	require.Zero(t, r.Ops)
}
