package main

import (
	"context"
	"fmt"
	"io"
	"time"
)

// cleanupTimeout bounds each cleanup step (dropping a database, deleting a
// key prefix, stopping the servers).
const cleanupTimeout = 2 * time.Minute

// cleanups is the stack of what a run must undo: databases to drop, key
// prefixes to delete, servers to stop. Steps run last in, first out, each
// even when the run was interrupted, so that ctrl-C leaves nothing behind.
type cleanups struct {
	steps []cleanupStep
}

type cleanupStep struct {
	what string // for the message when it fails: "dropping database ffbench_1a2b3c4d"
	fn   func(context.Context) error
}

// add registers fn, described by what, to run at the end.
func (c *cleanups) add(what string, fn func(context.Context) error) {
	c.steps = append(c.steps, cleanupStep{what: what, fn: fn})
}

// run runs the registered steps in reverse order, each under its own
// timeout and detached from ctx's cancellation, and reports failures on
// stderr. It returns how many failed.
func (c *cleanups) run(ctx context.Context, stderr io.Writer) int {
	failed := 0
	for i := len(c.steps) - 1; i >= 0; i-- {
		s := c.steps[i]
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		if err := s.fn(sctx); err != nil {
			fmt.Fprintf(stderr, "bench: cleanup: %s: %v\n", s.what, err)
			failed++
		}
		cancel()
	}
	c.steps = nil
	return failed
}
