package cli

// The drivers every ff binary registers. A custom binary registers more by
// blank-importing them next to its call to Main (see the package doc).
import (
	_ "github.com/flowfabric/flowfabric-go/backend/memory"   // memory://
	_ "github.com/flowfabric/flowfabric-go/backend/postgres" // postgres://, postgresql://
	_ "github.com/flowfabric/flowfabric-go/backend/sqlite"   // sqlite://PATH (the default backend)
	_ "github.com/flowfabric/flowfabric-go/backend/valkey"   // valkey://, valkeys://, redis://, rediss://, +cluster forms
)
