// Package reliability holds FlowFabric-Go's reliability tests and the
// helpers they are built from: porcupine models of docs/spec.md (the keystore
// per partition, the suspension state per execution) and a loopback TCP
// proxy that cuts and stalls connections.
//
// The tests run against every real backend (memory, SQLite, PostgreSQL,
// Valkey standalone and cluster) through internal/testenv:
//
//   - TestLinearizable*: concurrent histories checked with porcupine;
//   - TestFault*: connections killed mid-operation, servers restarted under
//     load (private ephemeral servers), a proxy that cuts and stalls;
//   - TestSoak: a bounded mixed load with rotations every second.
//
// Sizes are bounded for `make test` (CI). With FF_RELIABILITY=long (what
// `make reliability` sets) they grow to several thousand operations per
// backend and a 60 s soak. docs/reliability.md records the figures.
package reliability
