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

// slowlogDepth is how many of the newest entries SLOWLOG GET reads, and the
// slowlog-max-len bench sets on a server it started.
const slowlogDepth = 1024

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

// since returns the entries logged since mark (or the previous since),
// and marks the newest it read, so that calls in a row count each entry
// once.
func (s *slowlog) since(ctx context.Context) (slowEntries, error) {
	entries, err := s.c.SlowLogGet(ctx, slowlogDepth).Result()
	if err != nil {
		return slowEntries{}, fmt.Errorf("SLOWLOG GET: %w", err)
	}
	out := countSlow(entries, s.lastID, s.prefix)
	if len(entries) > 0 {
		s.lastID = max(s.lastID, entries[0].ID)
	}
	return out, nil
}

// add adds o's entries to s.
func (s *slowEntries) add(o slowEntries) {
	s.Count += o.Count
	s.Longest = max(s.Longest, o.Longest)
	s.Partial = s.Partial || o.Partial
}

// countSlow counts the entries newer than lastID, over slowThreshold,
// whose arguments name a key under prefix. entries are newest first, as
// SLOWLOG GET returns them; when the oldest of them is newer than the
// entry after lastID, some were lost (to the log's length or GET's
// depth) and the count is partial. With no lastID (-1: the log was empty,
// and ids do not restart after SLOWLOG RESET), a log of 128 entries (the
// default slowlog-max-len) or more may have lost some.
func countSlow(entries []redis.SlowLog, lastID int64, prefix string) slowEntries {
	var out slowEntries
	switch {
	case len(entries) == 0:
	case lastID < 0:
		out.Partial = len(entries) >= 128
	default:
		out.Partial = entries[len(entries)-1].ID > lastID+1
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
