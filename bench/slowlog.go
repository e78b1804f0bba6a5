package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// slowThreshold is the duration over which a slowlog entry is counted.
const slowThreshold = 5 * time.Millisecond

// slowlogDepth is how many of the newest entries SLOWLOG GET reads.
const slowlogDepth = 128

// slowlog reads a Valkey server's slowlog around a measurement, with
// SLOWLOG GET only: it never resets nor reconfigures it. Entries are
// told apart by their ids, which only grow.
type slowlog struct {
	c      *redis.Client
	prefix string // only entries naming a key under it are this run's
	lastID int64  // the newest id before the measurement; -1 for none
}

// slowEntries is what a measurement left in the slowlog: the entries over
// slowThreshold that name this run's keys, and the longest.
type slowEntries struct {
	Count   int
	Longest time.Duration
	Partial bool // more new entries than SLOWLOG GET returned: Count is a floor
}

// mark remembers the newest entry's id.
func (s *slowlog) mark(ctx context.Context) error {
	entries, err := s.c.SlowLogGet(ctx, 1).Result()
	if err != nil {
		return fmt.Errorf("SLOWLOG GET: %w", err)
	}
	s.lastID = -1
	if len(entries) > 0 {
		s.lastID = entries[0].ID
	}
	return nil
}

// since returns the entries logged since mark.
func (s *slowlog) since(ctx context.Context) (slowEntries, error) {
	entries, err := s.c.SlowLogGet(ctx, slowlogDepth).Result()
	if err != nil {
		return slowEntries{}, fmt.Errorf("SLOWLOG GET: %w", err)
	}
	return countSlow(entries, s.lastID, s.prefix), nil
}

// countSlow counts the entries newer than lastID, over slowThreshold,
// whose arguments name a key under prefix. entries are newest first, as
// SLOWLOG GET returns them.
func countSlow(entries []redis.SlowLog, lastID int64, prefix string) slowEntries {
	var out slowEntries
	if len(entries) == slowlogDepth && entries[len(entries)-1].ID > lastID+1 {
		out.Partial = true
	}
	for _, e := range entries {
		if e.ID <= lastID {
			break
		}
		if e.Duration <= slowThreshold || !namesPrefix(e.Args, prefix) {
			continue
		}
		out.Count++
		out.Longest = max(out.Longest, e.Duration)
	}
	return out
}

func namesPrefix(args []string, prefix string) bool {
	for _, a := range args {
		if strings.Contains(a, prefix) {
			return true
		}
	}
	return false
}

// String renders "0", or "3 (longest 12.0 ms)", with "≥" when partial.
func (s slowEntries) String() string {
	if s.Count == 0 && !s.Partial {
		return "0"
	}
	n := fmt.Sprint(s.Count)
	if s.Partial {
		n = "≥" + n
	}
	return fmt.Sprintf("%s (longest %s)", n, formatLatency(s.Longest))
}
