// Command ff is the FlowFabric-Go command line: seed and rotate signing
// secrets, sign and verify tokens, suspend executions and deliver signals.
// Everything lives in package cli; run `ff help` for the commands.
package main

import "github.com/flowfabric/flowfabric-go/cli"

func main() { cli.Main() }
