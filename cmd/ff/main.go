// Command ff is the FlowFabric-Go command line: seed and rotate signing
// secrets, sign and verify tokens, suspend executions and deliver signals.
// Everything lives in package cli; run `ff help` for the commands.
//
// This binary links every in-repo driver. A custom ff links others (or
// fewer) by blank-importing them next to its call to cli.Main, as
// examples/boltstore/cmd/ff does.
package main

import (
	_ "github.com/flowfabric/flowfabric-go/backend/memory"   // memory://
	_ "github.com/flowfabric/flowfabric-go/backend/postgres" // postgres://, postgresql://
	_ "github.com/flowfabric/flowfabric-go/backend/sqlite"   // sqlite://PATH (the default backend)
	_ "github.com/flowfabric/flowfabric-go/backend/valkey"   // valkey://, valkeys://, redis://, rediss://, +cluster forms
	"github.com/flowfabric/flowfabric-go/cli"
)

func main() { cli.Main() }
