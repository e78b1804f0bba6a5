package httpapi

import (
	"net/http"
	"slices"
)

// Auth is what a route asks of its caller.
type Auth string

// The credentials a route may ask for.
const (
	// AuthNone: no Authorization header (health, metrics, the OpenAPI
	// document, the callback route, whose URL carries the token).
	AuthNone Auth = "none"
	// AuthAdmin: Authorization: Bearer <admin token> (Options.AdminToken).
	AuthAdmin Auth = "admin"
	// AuthWaitpointToken: Authorization: Bearer <waitpoint token>.
	AuthWaitpointToken Auth = "waitpoint_token"
)

// Route is one route of the API: a method on a path pattern.
type Route struct {
	// Method is GET or POST. A GET route also answers HEAD.
	Method string
	// Pattern is the path with {name} wildcards, as net/http's ServeMux
	// and the OpenAPI document (GET /openapi.json) write it.
	Pattern string
	// Name is the operation's name: the route label of the metrics.
	Name string
	// Auth is the credential the route asks for.
	Auth Auth
}

// Route names of the routes that are not operations of docs/spec.md.
const (
	RouteHealthz     = "healthz"
	RouteReadyz      = "readyz"
	RouteMetrics     = "metrics"
	RouteOpenAPI     = "openapi"
	RouteCallback    = "deliver_signal_callback"
	RouteCallbackURL = "callback_url"
)

// routeTable is the one list of the API's routes: the router registers
// these, Routes exports them, and the tests check the OpenAPI document
// against them, so that a route cannot be served without being documented.
var routeTable = []Route{
	{http.MethodPost, "/v1/executions/{execution_id}/waitpoints/{waitpoint_id}/signals", "deliver_signal", AuthWaitpointToken},
	{http.MethodPost, "/v1/callbacks/{execution_id}/{waitpoint_id}/{token}", RouteCallback, AuthNone},
	{http.MethodPost, "/v1/admin/keystore/seed", "seed", AuthAdmin},
	{http.MethodPost, "/v1/admin/keystore/rotate", "rotate_all", AuthAdmin},
	{http.MethodPost, "/v1/admin/keystore/revoke", "revoke_kid", AuthAdmin},
	{http.MethodGet, "/v1/admin/keystore/kids", "list_kids", AuthAdmin},
	{http.MethodPost, "/v1/admin/sign", "sign", AuthAdmin},
	{http.MethodPost, "/v1/admin/verify", "verify", AuthAdmin},
	{http.MethodPost, "/v1/admin/executions/{execution_id}/suspend", "suspend", AuthAdmin},
	{http.MethodGet, "/v1/admin/executions/{execution_id}/signals", "observe_signals", AuthAdmin},
	{http.MethodPost, "/v1/admin/executions/{execution_id}/complete", "complete_execution", AuthAdmin},
	{http.MethodPost, "/v1/admin/executions/{execution_id}/waitpoints", "create_waitpoint", AuthAdmin},
	{http.MethodGet, "/v1/admin/executions/{execution_id}/waitpoints/{waitpoint_id}", "get_waitpoint", AuthAdmin},
	{http.MethodPost, "/v1/admin/executions/{execution_id}/extend", "extend_lease", AuthAdmin},
	{http.MethodPost, "/v1/admin/executions/{execution_id}/release", "release_execution", AuthAdmin},
	{http.MethodPost, "/v1/admin/executions/{execution_id}/cancel", "cancel_suspension", AuthAdmin},
	{http.MethodGet, "/v1/admin/executions/{execution_id}", "describe_execution", AuthAdmin},
	{http.MethodGet, "/v1/admin/counts", "count_executions", AuthAdmin},
	{http.MethodGet, "/v1/admin/suspended", "list_suspended", AuthAdmin},
	{http.MethodPost, "/v1/admin/claim", "claim_resumed_execution", AuthAdmin},
	{http.MethodPost, "/v1/admin/claims", "claim_resumed_executions", AuthAdmin},
	{http.MethodPost, "/v1/admin/callback-url", RouteCallbackURL, AuthAdmin},
	{http.MethodGet, "/healthz", RouteHealthz, AuthNone},
	{http.MethodGet, "/readyz", RouteReadyz, AuthNone},
	{http.MethodGet, "/metrics", RouteMetrics, AuthNone},
	{http.MethodGet, "/openapi.json", RouteOpenAPI, AuthNone},
}

// Routes returns every route the handler can serve, in the order of its
// package documentation. Two depend on Options: /metrics is not served
// with DisableMetricsRoute, and the callback routes (RouteCallback,
// RouteCallbackURL) only with a CallbackBaseURL; a route that is off
// answers 404 route_not_found like any unknown path.
func Routes() []Route { return slices.Clone(routeTable) }

// served reports whether the handler serves rt with its options.
func (h *Handler) served(rt Route) bool {
	switch rt.Name {
	case RouteMetrics:
		return !h.opts.DisableMetricsRoute
	case RouteCallback, RouteCallbackURL:
		return h.callbackBase != nil
	}
	return true
}
