package worker

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// Defaults and bounds of Options.
const (
	DefaultConcurrency       = 8
	MaxConcurrency           = 10_000
	DefaultHeartbeatFraction = 1.0 / 3
	DefaultPollInterval      = time.Second
	DefaultShutdownGrace     = 10 * time.Second
)

// Bounds of the worker's own store calls, which run on contexts of their
// own so that a shutdown does not abandon them half-way.
const (
	// releaseTimeout bounds one release_execution, at shutdown included.
	releaseTimeout = 5 * time.Second
	// maxCallTimeout bounds one claim, complete or suspend attempt; a
	// shorter lease bounds them more.
	maxCallTimeout = 10 * time.Second
	// finishAttempts is how often a complete, suspend or release that
	// failed with a retryable error is tried.
	finishAttempts = 3
)

// Options configure a Worker. The zero value is usable: every zero field
// takes its documented default.
type Options struct {
	// WorkerID names the worker in its claims (docs/spec.md §5.5): 1–128
	// bytes of [A-Za-z0-9._:-]. Default: hostname-pid-random, the hostname
	// with other bytes replaced by '-'.
	WorkerID string
	// Concurrency is how many handlers run at once, 1 to MaxConcurrency.
	// Default DefaultConcurrency (8). The worker claims only while a slot
	// is free, never more executions than free slots.
	Concurrency int
	// BatchSize caps the executions one claim call takes, 1 to
	// contracts.MaxClaimBatch. Default: the free slots, at most
	// contracts.MaxClaimBatch.
	BatchSize int
	// LeaseMs is the lease of each claim and each heartbeat, 1 to
	// contracts.MaxLeaseMs. Default contracts.DefaultLeaseMs (30 s).
	LeaseMs int64
	// HeartbeatFraction sets the heartbeat period as a fraction of the
	// lease, in (0, 1): a running handler's lease is extended every
	// LeaseMs × HeartbeatFraction (at least 1 ms). Default 1/3.
	HeartbeatFraction float64
	// PollInterval is how often the worker tries to claim while nothing
	// woke it (docs/spec.md §8.8): executions that become claimable with
	// time (a timeout, an expired lease) and changes made by processes
	// whose backend pushes nothing are found this way. Default 1 s;
	// negative is invalid.
	PollInterval time.Duration
	// ShutdownGrace is how long running handlers may go on after Run's
	// context ends, their own contexts still alive; then they are
	// cancelled and their executions released. Default 10 s; a negative
	// value means no grace at all.
	ShutdownGrace time.Duration
	// Logger receives the worker's logs. Default slog.Default().
	Logger *slog.Logger
}

// settings are Options with every default filled and the derived periods.
type settings struct {
	Options
	lease     time.Duration
	heartbeat time.Duration
	batch     int
	call      time.Duration // timeout of one claim, complete or suspend attempt
}

// withDefaults validates o and fills its defaults. Errors are
// validation / invalid_input naming the field.
func (o Options) withDefaults() (settings, error) {
	if o.WorkerID == "" {
		o.WorkerID = defaultWorkerID()
	}
	if err := contracts.ValidateIdentifier("WorkerID", o.WorkerID); err != nil {
		return settings{}, err
	}
	if o.Concurrency == 0 {
		o.Concurrency = DefaultConcurrency
	}
	if err := contracts.ValidateRange("Concurrency", int64(o.Concurrency), 1, MaxConcurrency); err != nil {
		return settings{}, err
	}
	if o.BatchSize != 0 {
		if err := contracts.ValidateRange("BatchSize", int64(o.BatchSize), 1, contracts.MaxClaimBatch); err != nil {
			return settings{}, err
		}
	}
	if o.LeaseMs == 0 {
		o.LeaseMs = contracts.DefaultLeaseMs
	}
	if err := contracts.ValidateRange("LeaseMs", o.LeaseMs, 1, contracts.MaxLeaseMs); err != nil {
		return settings{}, err
	}
	if o.HeartbeatFraction == 0 {
		o.HeartbeatFraction = DefaultHeartbeatFraction
	}
	if !(o.HeartbeatFraction > 0 && o.HeartbeatFraction < 1) {
		return settings{}, contracts.Invalid("HeartbeatFraction", "must be 0 (default 1/3) or between 0 and 1, exclusive")
	}
	switch {
	case o.PollInterval == 0:
		o.PollInterval = DefaultPollInterval
	case o.PollInterval < 0:
		return settings{}, contracts.Invalid("PollInterval", "must be 0 (default 1s) or positive")
	}
	switch {
	case o.ShutdownGrace == 0:
		o.ShutdownGrace = DefaultShutdownGrace
	case o.ShutdownGrace < 0:
		o.ShutdownGrace = 0
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	s := settings{Options: o, batch: o.BatchSize}
	// A lease of 2^53-1 ms does not fit a time.Duration: cap it (≈ 292 years).
	s.lease = time.Duration(min(o.LeaseMs, math.MaxInt64/int64(time.Millisecond))) * time.Millisecond
	s.heartbeat = max(time.Duration(float64(s.lease)*o.HeartbeatFraction), time.Millisecond)
	if s.batch == 0 {
		s.batch = contracts.MaxClaimBatch
	}
	// A claim or a complete that takes longer than the lease is worthless.
	s.call = min(max(s.lease, time.Second), maxCallTimeout)
	return s, nil
}

// defaultWorkerID is hostname-pid-random: unique per process, readable in
// the store and in logs.
func defaultWorkerID() string {
	host, _ := os.Hostname()
	host = strings.Map(func(r rune) rune {
		if r < 0x80 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return r
		}
		return '-'
	}, host)
	if len(host) > 64 {
		host = host[:64]
	}
	if host == "" || host == "." || host == ".." {
		host = "worker"
	}
	var b [4]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return host + "-" + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b[:])
}
