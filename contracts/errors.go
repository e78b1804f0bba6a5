package contracts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// Kind is the class of a contract error (docs/spec.md §6). The set is closed.
type Kind string

// The error kinds of docs/spec.md §6.
const (
	KindValidation  Kind = "validation"
	KindNotFound    Kind = "not_found"
	KindConflict    Kind = "conflict"
	KindState       Kind = "state"
	KindContention  Kind = "contention"
	KindTransport   Kind = "transport"
	KindUnavailable Kind = "unavailable"
)

// Error codes. Each pairs with exactly one Kind; see the sentinels below.
const (
	CodeInvalidInput                = "invalid_input"
	CodeInvalidToken                = "invalid_token"
	CodeTokenExpired                = "token_expired"
	CodeHMACSecretNotInitialized    = "hmac_secret_not_initialized"
	CodeRotationConflict            = "rotation_conflict"
	CodePartitionCountMismatch      = "partition_count_mismatch"
	CodeAlreadySuspended            = "already_suspended"
	CodeLeaseMismatch               = "lease_mismatch"
	CodeIdempotencyMismatch         = "idempotency_mismatch"
	CodeWaitpointClosed             = "waitpoint_closed"
	CodeSuspensionTimedOut          = "suspension_timed_out"
	CodeSignalLimitExceeded         = "signal_limit_exceeded"
	CodeExecutionNotFound           = "execution_not_found"
	CodeSerializationRetryExhausted = "serialization_retry_exhausted"
	CodeBackendUnreachable          = "backend_unreachable"
	CodeDeadlineExceeded            = "deadline_exceeded"
	CodeCanceled                    = "canceled"
	CodeBackendClosed               = "backend_closed"
	CodeInternal                    = "internal_error"
	CodeSchemaMismatch              = "schema_mismatch"
	CodeKEKMismatch                 = "kek_mismatch"
	CodeSuspendReplayExpired        = "suspend_replay_expired"
	CodeStorageFull                 = "storage_full"
	// Version 2 of the waitpoint lifecycle (docs/spec.md §8).
	CodePendingWaitpointUnavailable = "pending_waitpoint_unavailable"
	CodeWaitpointLimitExceeded      = "waitpoint_limit_exceeded"
	CodeNotSuspended                = "not_suspended"
	CodeWaitpointNotFound           = "waitpoint_not_found"
	CodeUnsupported                 = "unsupported"
	CodeKidIsCurrent                = "kid_is_current" // revoke_kid of the current kid (§8.7)
	CodeAuthFailed                  = "auth_failed"
	CodeTLSFailed                   = "tls_failed"
	CodeStoreReset                  = "store_reset"
	CodeReplicationUnconfirmed      = "replication_unconfirmed"
)

// Token failure reasons (docs/spec.md §3), carried in Error.Reason.
const (
	ReasonMalformed         = "malformed"
	ReasonUnknownKid        = "unknown_kid"
	ReasonSignatureMismatch = "signature_mismatch"
)

// Error is the one error type of the contract. Every error an Engine returns
// is an *Error, so callers can branch with errors.Is against the sentinels
// (which compare Kind, Code and, when the sentinel has one, Reason) or with
// errors.As to read the fields.
//
// Detail is human-readable text that names the field and the rule. It never
// contains secret material or a token's MAC. Err, when set, is the native
// error a driver interpreted (a pgx or go-redis error); it is reachable
// through errors.Unwrap but never serialized.
type Error struct {
	Kind      Kind
	Code      string
	Reason    string // empty encodes as null
	Detail    string
	Retryable bool
	Err       error
}

// Sentinels for errors.Is: errors.Is(err, contracts.ErrLeaseMismatch). They
// are values of type Sentinel, which has no exported fields, so no caller
// can change what a sentinel means for everyone else.
var (
	ErrInvalidInput                = Sentinel{kind: KindValidation, code: CodeInvalidInput}
	ErrInvalidToken                = Sentinel{kind: KindValidation, code: CodeInvalidToken}
	ErrTokenMalformed              = Sentinel{kind: KindValidation, code: CodeInvalidToken, reason: ReasonMalformed}
	ErrUnknownKid                  = Sentinel{kind: KindValidation, code: CodeInvalidToken, reason: ReasonUnknownKid}
	ErrSignatureMismatch           = Sentinel{kind: KindValidation, code: CodeInvalidToken, reason: ReasonSignatureMismatch}
	ErrTokenExpired                = Sentinel{kind: KindValidation, code: CodeTokenExpired}
	ErrHMACSecretNotInitialized    = Sentinel{kind: KindState, code: CodeHMACSecretNotInitialized}
	ErrRotationConflict            = Sentinel{kind: KindConflict, code: CodeRotationConflict}
	ErrPartitionCountMismatch      = Sentinel{kind: KindConflict, code: CodePartitionCountMismatch}
	ErrAlreadySuspended            = Sentinel{kind: KindConflict, code: CodeAlreadySuspended}
	ErrLeaseMismatch               = Sentinel{kind: KindConflict, code: CodeLeaseMismatch}
	ErrIdempotencyMismatch         = Sentinel{kind: KindConflict, code: CodeIdempotencyMismatch}
	ErrWaitpointClosed             = Sentinel{kind: KindState, code: CodeWaitpointClosed}
	ErrSuspensionTimedOut          = Sentinel{kind: KindState, code: CodeSuspensionTimedOut}
	ErrSignalLimitExceeded         = Sentinel{kind: KindState, code: CodeSignalLimitExceeded}
	ErrExecutionNotFound           = Sentinel{kind: KindNotFound, code: CodeExecutionNotFound}
	ErrSerializationRetryExhausted = Sentinel{kind: KindContention, code: CodeSerializationRetryExhausted, retryable: true}
	ErrBackendUnreachable          = Sentinel{kind: KindTransport, code: CodeBackendUnreachable, retryable: true}
	ErrDeadlineExceeded            = Sentinel{kind: KindTransport, code: CodeDeadlineExceeded, retryable: true}
	ErrCanceled                    = Sentinel{kind: KindTransport, code: CodeCanceled}
	ErrBackendClosed               = Sentinel{kind: KindUnavailable, code: CodeBackendClosed}
	ErrInternal                    = Sentinel{kind: KindUnavailable, code: CodeInternal}
	// ErrSchemaMismatch: the store's schema is behind the binary (run
	// `ff migrate`), newer than the binary, or was changed after it was
	// applied. Not retryable.
	ErrSchemaMismatch = Sentinel{kind: KindUnavailable, code: CodeSchemaMismatch}
	// ErrKEKMismatch: a stored secret cannot be opened with the configured
	// key-encryption keys (none is configured, the one that sealed it is
	// missing, or the stored form was altered). Not retryable: the
	// deployment's kek_file must change. See package kek.
	ErrKEKMismatch = Sentinel{kind: KindUnavailable, code: CodeKEKMismatch}
	// ErrSuspendReplayExpired: a suspend replay whose tokens were signed by
	// a kid that is no longer usable (collected, or past its grace): the
	// tokens cannot be recomputed into anything that verifies.
	ErrSuspendReplayExpired = Sentinel{kind: KindState, code: CodeSuspendReplayExpired}
	// ErrStorageFull: the store cannot write (disk full, quota); retryable
	// once space is freed.
	ErrStorageFull = Sentinel{kind: KindUnavailable, code: CodeStorageFull, retryable: true}
	// ErrPendingWaitpointUnavailable: a suspend names a pending waitpoint
	// that is unknown, of another execution, expired or already used.
	ErrPendingWaitpointUnavailable = Sentinel{kind: KindConflict, code: CodePendingWaitpointUnavailable}
	// ErrWaitpointLimitExceeded: create_waitpoint on an execution that
	// already holds the most pending waitpoints allowed.
	ErrWaitpointLimitExceeded = Sentinel{kind: KindState, code: CodeWaitpointLimitExceeded}
	// ErrNotSuspended: cancel_suspension of an execution that is not suspended.
	ErrNotSuspended = Sentinel{kind: KindConflict, code: CodeNotSuspended}
	// ErrWaitpointNotFound: get_waitpoint of a waitpoint the execution does
	// not have.
	ErrWaitpointNotFound = Sentinel{kind: KindNotFound, code: CodeWaitpointNotFound}
	// ErrUnsupported: the backend does not implement the operation (a
	// driver written before it joined the SPI). Not retryable.
	ErrUnsupported = Sentinel{kind: KindUnavailable, code: CodeUnsupported}
	// ErrKidIsCurrent: revoke_kid of a partition's current kid; rotate
	// first, then revoke the outgoing kid.
	ErrKidIsCurrent = Sentinel{kind: KindConflict, code: CodeKidIsCurrent}
	// ErrAuthFailed: the store refused the credentials or the permission;
	// fix the URL's user/password or the server's ACL. Not retryable.
	ErrAuthFailed = Sentinel{kind: KindUnavailable, code: CodeAuthFailed}
	// ErrTLSFailed: the TLS handshake with the store failed (a certificate
	// that does not verify, a name that does not match, no common
	// protocol); the detail names the problem. Not retryable: the
	// deployment's certificates or URL must change.
	ErrTLSFailed = Sentinel{kind: KindUnavailable, code: CodeTLSFailed}
	// ErrStoreReset: the store lost its data under a running Engine (a
	// server restarted without persistence, a database dropped): the
	// marker the backend found at open is gone. Not retryable: every
	// secret and wait went with it; an operator must look, then re-seed.
	ErrStoreReset = Sentinel{kind: KindUnavailable, code: CodeStoreReset}
	// ErrReplicationUnconfirmed: a write was applied on the primary, but
	// fewer replicas than the backend was told to wait for confirmed it
	// in time. Retryable: the operations are idempotent (a retried
	// suspend or deliver_signal converges on the one effect), and a
	// replica promoted meanwhile may not have it.
	ErrReplicationUnconfirmed = Sentinel{kind: KindUnavailable, code: CodeReplicationUnconfirmed, retryable: true}
)

// Sentinel names one error of the taxonomy (a kind, a code and, for token
// failures, a reason) for errors.Is. It is a value without exported fields,
// so it cannot be modified; build an *Error from it with With or Wrapping.
type Sentinel struct {
	kind      Kind
	code      string
	reason    string
	retryable bool
}

// Kind returns the sentinel's error kind.
func (s Sentinel) Kind() Kind { return s.kind }

// Code returns the sentinel's error code.
func (s Sentinel) Code() string { return s.code }

// Reason returns the sentinel's reason, empty when it has none.
func (s Sentinel) Reason() string { return s.reason }

// Retryable reports whether errors of this sentinel are retryable.
func (s Sentinel) Retryable() bool { return s.retryable }

// Error implements error: "kind/code[/reason]".
func (s Sentinel) Error() string { return s.error().Error() }

// error returns the sentinel as an *Error without detail.
func (s Sentinel) error() *Error {
	return &Error{Kind: s.kind, Code: s.code, Reason: s.reason, Retryable: s.retryable}
}

// With returns an *Error of this sentinel carrying detail, formatted like
// fmt.Sprintf: contracts.ErrLeaseMismatch.With("lease_id: ...").
func (s Sentinel) With(format string, args ...any) *Error {
	e := s.error()
	e.Detail = fmt.Sprintf(format, args...)
	return e
}

// Wrapping returns an *Error of this sentinel, without detail, that wraps
// the native error cause (see Error.Wrapping).
func (s Sentinel) Wrapping(cause error) *Error {
	e := s.error()
	e.Err = cause
	return e
}

// Error implements error: "kind/code[/reason]: detail".
func (e *Error) Error() string {
	s := string(e.Kind) + "/" + e.Code
	if e.Reason != "" {
		s += "/" + e.Reason
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Unwrap returns the native error the driver interpreted, if any.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is a Sentinel (or an *Error) of the same Kind
// and Code and, when target carries a Reason, the same Reason. It makes the
// sentinels work with errors.Is whatever the Detail.
func (e *Error) Is(target error) bool {
	switch t := target.(type) {
	case Sentinel:
		return e.Kind == t.kind && e.Code == t.code && (t.reason == "" || e.Reason == t.reason)
	case *Error:
		return e.Kind == t.Kind && e.Code == t.Code && (t.Reason == "" || e.Reason == t.Reason)
	}
	return false
}

// With returns a copy of e carrying another detail, formatted like
// fmt.Sprintf, and no wrapped cause.
func (e *Error) With(format string, args ...any) *Error {
	c := *e
	c.Detail = fmt.Sprintf(format, args...)
	c.Err = nil
	return &c
}

// Wrapping returns a copy of e that wraps the native error cause. The cause's
// text is not copied into Detail: driver errors may quote arguments.
func (e *Error) Wrapping(cause error) *Error {
	c := *e
	c.Err = cause
	return &c
}

// errorJSON is the wire form of an Error, inside {"error":{...}}.
type errorJSON struct {
	Kind      Kind    `json:"kind"`
	Code      string  `json:"code"`
	Reason    *string `json:"reason"`
	Detail    string  `json:"detail"`
	Retryable bool    `json:"retryable"`
}

// MarshalJSON encodes the error object of docs/spec.md §6 (without the outer
// "error" key; see ErrorEnvelope).
func (e *Error) MarshalJSON() ([]byte, error) {
	return marshal(errorJSON{Kind: e.Kind, Code: e.Code, Reason: nullable(e.Reason), Detail: e.Detail, Retryable: e.Retryable})
}

// UnmarshalJSON decodes the error object of docs/spec.md §6.
func (e *Error) UnmarshalJSON(b []byte) error {
	var w errorJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*e = Error{Kind: w.Kind, Code: w.Code, Detail: w.Detail, Retryable: w.Retryable}
	if w.Reason != nil {
		e.Reason = *w.Reason
	}
	return nil
}

// ErrorEnvelope is the JSON body of a failed call: {"error":{...}}.
type ErrorEnvelope struct {
	Error *Error `json:"error"`
}

// Invalid returns a validation / invalid_input error naming field and rule.
func Invalid(field, rule string) *Error {
	return ErrInvalidInput.With("%s: %s", field, rule)
}

// AsError converts any error into a contract *Error. Contract errors pass
// through unchanged; context errors become transport errors; anything else is
// unavailable / internal_error wrapping the cause. A nil error gives nil.
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var ce *Error
	switch {
	case errors.As(err, &ce):
		return ce
	case errors.Is(err, context.DeadlineExceeded):
		return ErrDeadlineExceeded.With("the call's deadline passed").Wrapping(err)
	case errors.Is(err, context.Canceled):
		return ErrCanceled.With("the call's context was canceled").Wrapping(err)
	default:
		return ErrInternal.With("unexpected backend error").Wrapping(err)
	}
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
