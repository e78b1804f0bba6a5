package httpapi

import (
	"errors"
	"net/http"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// Error codes that exist only at the HTTP layer; their kinds are the
// contract's.
const (
	CodeUnauthorized     = "unauthorized"
	CodeAdminDisabled    = "admin_disabled"
	CodeRouteNotFound    = "route_not_found"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeBodyTooLarge     = "body_too_large"
)

var (
	errUnauthorized  = &contracts.Error{Kind: contracts.KindValidation, Code: CodeUnauthorized}
	errAdminDisabled = &contracts.Error{Kind: contracts.KindUnavailable, Code: CodeAdminDisabled}
	errRouteNotFound = &contracts.Error{Kind: contracts.KindNotFound, Code: CodeRouteNotFound}
	errMethod        = &contracts.Error{Kind: contracts.KindValidation, Code: CodeMethodNotAllowed}
	errBodyTooLarge  = &contracts.Error{Kind: contracts.KindValidation, Code: CodeBodyTooLarge}
)

// StatusOf maps a contract error onto its HTTP status code: 400
// validation, 401 invalid_token, token_expired and unauthorized, 403
// admin_disabled, 404 not_found, 405 method_not_allowed, 409 conflict and
// state, 413 body_too_large, 429 contention, 501 unsupported (an operation
// of docs/spec.md §8 on a backend without it: asking again will not help),
// and 503 any other unavailable and transport error.
func StatusOf(e *contracts.Error) int {
	switch {
	case errors.Is(e, contracts.ErrUnsupported):
		return http.StatusNotImplemented
	case e.Code == CodeUnauthorized,
		errors.Is(e, contracts.ErrInvalidToken), errors.Is(e, contracts.ErrTokenExpired):
		return http.StatusUnauthorized
	case e.Code == CodeAdminDisabled:
		return http.StatusForbidden
	case e.Code == CodeMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case e.Code == CodeBodyTooLarge:
		return http.StatusRequestEntityTooLarge
	}
	switch e.Kind {
	case contracts.KindValidation:
		return http.StatusBadRequest
	case contracts.KindNotFound:
		return http.StatusNotFound
	case contracts.KindConflict, contracts.KindState:
		return http.StatusConflict
	case contracts.KindContention:
		return http.StatusTooManyRequests
	default: // transport, unavailable
		return http.StatusServiceUnavailable
	}
}
