package valkey

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/redis/go-redis/v9"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// scriptErrors maps the codes scripts raise ("FF <code> <detail>") to the
// contract's sentinels.
var scriptErrors = map[string]*contracts.Error{
	contracts.CodePartitionCountMismatch: contracts.ErrPartitionCountMismatch,
	contracts.CodeRotationConflict:       contracts.ErrRotationConflict,
	contracts.CodeAlreadySuspended:       contracts.ErrAlreadySuspended,
	contracts.CodeLeaseMismatch:          contracts.ErrLeaseMismatch,
	contracts.CodeIdempotencyMismatch:    contracts.ErrIdempotencyMismatch,
	contracts.CodeWaitpointClosed:        contracts.ErrWaitpointClosed,
	contracts.CodeSuspensionTimedOut:     contracts.ErrSuspensionTimedOut,
	contracts.CodeSignalLimitExceeded:    contracts.ErrSignalLimitExceeded,
	contracts.CodeExecutionNotFound:      contracts.ErrExecutionNotFound,
}

// transientServerErrors are server replies that mean "not now": the cluster
// is resharding or failing over, or the server is loading.
var transientServerErrors = []string{"CLUSTERDOWN", "LOADING", "TRYAGAIN", "MASTERDOWN", "BUSY", "READONLY"}

// interpretError maps a go-redis error onto the contract's taxonomy. It is
// applied on every return path of the driver. Contract errors pass through;
// script errors carrying a contract code become that error; context errors
// become transport deadline/canceled errors; network failures and redis.Nil
// become transport / backend_unreachable (retryable); a closed client is
// unavailable / backend_closed. The native error stays reachable through
// errors.Unwrap; its text is never copied into the detail.
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
	if isNetworkError(err) || errors.Is(err, redis.Nil) {
		return contracts.ErrBackendUnreachable.With("the Valkey server did not answer").Wrapping(err)
	}
	return contracts.ErrInternal.With("unexpected Valkey error").Wrapping(err)
}

// interpretServerError maps an error reply of the server.
func interpretServerError(err error, msg string) error {
	msg = strings.TrimPrefix(msg, "ERR ")
	if rest, ok := strings.CutPrefix(msg, "FF "); ok {
		code, detail, _ := strings.Cut(rest, " ")
		if s, ok := scriptErrors[code]; ok {
			return s.With("%s", detail)
		}
	}
	for _, p := range transientServerErrors {
		if strings.HasPrefix(msg, p) {
			return contracts.ErrBackendUnreachable.With("the Valkey server is not ready (%s)", p).Wrapping(err)
		}
	}
	return contracts.ErrInternal.With("unexpected Valkey error reply").Wrapping(err)
}

// isNetworkError reports a failure to reach or talk to the server.
func isNetworkError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, redis.ErrPoolTimeout)
}
