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
// The operations of version 2 of the waitpoint lifecycle (docs/spec.md
// §8.1, §8.2, §8.4, §8.5) have their own history (TestLinearizableLifecycle,
// against the same SignalsModel) and fault tests (*Lifecycle). They need a
// backend implementing driver.Lifecycle: without it they skip naming the
// interface, and under CI=true, where every in-repo backend must implement
// it, they fail.
//
// Sizes are bounded for `make test` (CI). With FF_RELIABILITY=long (what
// `make reliability` sets) they grow to several thousand operations per
// backend and a 60 s soak. docs/reliability.md records the figures.
package reliability
