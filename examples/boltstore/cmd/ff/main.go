// Command ff is the FlowFabric-Go command line with the bolt:// driver built
// in: every command of github.com/flowfabric/flowfabric-go/cli, and every
// scheme it registers by default, plus bolt://PATH.
//
//	go build -o ff ./cmd/ff
//	./ff --backend bolt://./ff.bolt seed --kid k1 --generate
package main

import (
	"github.com/flowfabric/flowfabric-go/cli"

	_ "github.com/flowfabric/flowfabric-go/examples/boltstore" // registers bolt://
)

func main() { cli.Main() }
