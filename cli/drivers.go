package cli

// The drivers every ff binary registers. A custom binary registers more by
// blank-importing them next to its call to Main (see the package doc).
import (
	_ "github.com/flowfabric/flowfabric-go/backend/memory" // memory://
	_ "github.com/flowfabric/flowfabric-go/backend/sqlite" // sqlite://PATH (the default backend)
	// DRIVERS ADDED BY THE LEAD: postgres:// and valkey:// go here, e.g.
	// _ "github.com/flowfabric/flowfabric-go/backend/postgres"
	// _ "github.com/flowfabric/flowfabric-go/backend/valkey"
)
