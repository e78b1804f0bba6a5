package valkey

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"

	"github.com/redis/go-redis/v9"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

// scriptError words the error a script raised as "FF <code> [<arg> ...]",
// through the contract's constructors so that every driver's detail text is
// the same. ok is false for a code this driver does not raise.
func scriptError(code string, args []string) (e *contracts.Error, ok bool) {
	arg := func(i int) string {
		if i < len(args) {
			return args[i]
		}
		return ""
	}
	switch code {
	case contracts.CodePartitionCountMismatch:
		return contracts.ErrPartitionCountMismatch.With(
			"partitions: the store was created with %s partitions, not %s", arg(0), arg(1)), true
	case contracts.CodeRotationConflict:
		return rotationConflict(arg(1), arg(0)), true
	case contracts.CodeAlreadySuspended:
		return driver.AlreadySuspended(arg(1), arg(0)), true
	case contracts.CodeLeaseMismatch:
		switch arg(0) {
		case "none":
			return driver.LeaseNotHeld(), true
		case "suspend":
			return driver.SuspendLeaseMismatch(arg(1)), true
		}
		return driver.CompleteLeaseMismatch(arg(1)), true
	case contracts.CodeIdempotencyMismatch:
		return driver.IdempotencyMismatch(), true
	case contracts.CodeWaitpointClosed:
		if arg(0) == "pending" {
			return driver.PendingWaitpointExpired(), true
		}
		return driver.WaitpointClosed(), true
	case contracts.CodeSuspensionTimedOut:
		return driver.SuspensionTimedOut(), true
	case contracts.CodeSignalLimitExceeded:
		return signalLimitExceeded(arg(0), arg(1)), true
	case contracts.CodeExecutionNotFound:
		return driver.ExecutionNotFound(arg(0)), true
	case contracts.CodeNotSuspended:
		return driver.NotSuspended(arg(0)), true
	case contracts.CodeStoreReset:
		return scriptStoreReset(arg(0), arg(1)), true
	}
	return nil, false
}

// signalLimitExceeded is the signal_limit_exceeded of the budget named by
// which ("waitpoint", "suspension" or "payload", as ff_record reports it)
// with limit n, worded by the driver kit as on every backend.
func signalLimitExceeded(which, limit string) *contracts.Error {
	n, err := strconv.ParseInt(limit, 10, 64)
	if err != nil || n < 1 {
		which, n = "suspension", contracts.SignalLimit
	}
	b := driver.BudgetSuspensionSignals
	switch which {
	case "waitpoint":
		b = driver.BudgetWaitpointSignals
	case "payload":
		b = driver.BudgetPayloadBytes
	}
	return driver.SignalLimitExceeded(b, n)
}

// rotationConflict is the rotation_conflict that driver.PlanRotate
// raises for kid, where why says what kid is: "current" (with another
// secret), "revoked" (docs/spec.md §8.7) or else remembered as verifying;
// it is obtained from PlanRotate itself so that the wording is the
// contract's.
func rotationConflict(kid string, why string) *contracts.Error {
	rec := driver.KidRecord{Kid: kid, Revoked: why == "revoked"}
	keys := driver.PartitionKeys{Verifying: []driver.KidRecord{rec}}
	if why == "current" {
		keys = driver.PartitionKeys{Current: &rec}
	}
	_, _, _, err := driver.PlanRotate(keys, contracts.RotateArgs{NewKid: kid, NewSecret: contracts.Secret{0}}, 0)
	return contracts.AsError(err)
}

// transientServerErrors are server replies that mean "not now": the cluster
// is resharding or failing over (MOVED and ASK reach the driver only from
// a call sent to one node, replication.go), or the server is loading.
var transientServerErrors = []string{"CLUSTERDOWN", "LOADING", "TRYAGAIN", "MASTERDOWN", "BUSY", "READONLY", "MOVED", "ASK"}

// interpretError maps a go-redis error onto the contract's taxonomy. It is
// applied on every return path of the driver. Contract errors pass through;
// script errors carrying a contract code become that error; context errors
// become transport deadline/canceled errors; a failed TLS handshake (a
// certificate that does not verify, a TLS alert, a port that does not speak
// TLS) is unavailable / tls_failed naming the problem (driver.TLSFailure),
// not retryable; other network failures and redis.Nil become transport /
// backend_unreachable (retryable); a missing or changed store marker
// (store.go) is unavailable / store_reset; a closed client is
// unavailable / backend_closed; WRONGPASS, NOAUTH and NOPERM replies are
// unavailable / auth_failed, quoting the server's reply (which never holds
// a password). The native error stays reachable through errors.Unwrap;
// other native texts are never copied into the detail.
func interpretError(err error) error {
	if err == nil {
		return nil
	}
	var ce *contracts.Error
	if errors.As(err, &ce) {
		return ce
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return contracts.AsError(err)
	}
	if errors.Is(err, redis.ErrClosed) {
		return contracts.ErrBackendClosed.With("the valkey backend is closed").Wrapping(err)
	}
	var re redis.Error
	if errors.As(err, &re) && !errors.Is(err, redis.Nil) {
		return interpretServerError(err, re.Error())
	}
	if ce, ok := driver.TLSFailure("valkey", err); ok {
		return ce // a certificate problem does not go away on retry
	}
	if isNetworkError(err) || errors.Is(err, redis.Nil) {
		return contracts.ErrBackendUnreachable.With("the Valkey server did not answer").Wrapping(err)
	}
	return contracts.ErrInternal.With("unexpected Valkey error").Wrapping(err)
}

// interpretServerError maps an error reply of the server.
func interpretServerError(err error, msg string) error {
	msg = strings.TrimPrefix(msg, "ERR ")
	if rest, ok := strings.CutPrefix(msg, "FF "); ok {
		f := strings.Fields(rest)
		if len(f) > 0 {
			if e, ok := scriptError(f[0], f[1:]); ok {
				return e
			}
		}
	}
	if isAuthReply(msg) {
		// The server's reply never quotes the password; the URL is not
		// echoed.
		return contracts.ErrAuthFailed.With("the Valkey server refused the credentials or the permission: %s", msg).Wrapping(err)
	}
	for _, p := range transientServerErrors {
		if strings.HasPrefix(msg, p) {
			return contracts.ErrBackendUnreachable.With("the Valkey server is not ready (%s)", p).Wrapping(err)
		}
	}
	return contracts.ErrInternal.With("unexpected Valkey error reply").Wrapping(err)
}

// authServerErrors are reply prefixes meaning the server refused the
// connection's credentials or a command's permission.
var authServerErrors = []string{"WRONGPASS", "NOAUTH", "NOPERM", "invalid password", "AUTH <password> called without any password configured"}

// isAuthReply reports a reply (without its "ERR " prefix) that refuses
// credentials or permissions.
func isAuthReply(msg string) bool {
	for _, p := range authServerErrors {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return strings.Contains(msg, "called without any password configured")
}

// isNetworkError reports a failure to reach or talk to the server.
func isNetworkError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, redis.ErrPoolTimeout)
}
