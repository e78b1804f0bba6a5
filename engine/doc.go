// Package engine is the API applications call: an Engine validates every
// argument once, before any I/O (a rejected call changes nothing), fills
// the documented defaults, maps every driver error onto *contracts.Error,
// and answers sign and verify from an in-process keystore cache where the
// driver allows it (docs/spec.md §4.5).
//
// An Engine sits on a storage driver chosen by URL. Drivers register their
// scheme from init, in the manner of database/sql; an application
// blank-imports the ones it wants and opens a URL:
//
//	import (
//		_ "github.com/flowfabric/flowfabric-go/backend/sqlite"
//		"github.com/flowfabric/flowfabric-go/engine"
//	)
//
//	eng, err := engine.Open(ctx, "sqlite://./ff.db")
//
// Postgres (postgres://, module github.com/flowfabric/flowfabric-go/backend/postgres)
// and Valkey (valkey://, redis://, module .../backend/valkey) are modules of
// their own, so an application that uses only the embedded backends does
// not download their client libraries. New wraps a driver value directly,
// without the registry.
//
// The operations, their envelopes and their errors are specified in
// docs/spec.md; the argument and outcome types are in package contracts;
// what a driver implements is in package driver.
package engine
