// Package archtest holds the tests that keep the package layout true: the
// import rules between the module's packages, the rule that a third-party
// driver needs no internal package, and the footprint of the library on an
// application that uses it (the modules `go list -m all` lists).
//
// The layout, from the bottom: contracts (what applications see; imports
// nothing of the module) ← kek (sealing) ← driver (the SPI and driver kit)
// ← engine (the facade) ← front ends (cli, httpapi, worker); the front ends
// share internal/expo (the metrics exposition), which imports nothing of
// the module. Each backend imports contracts, driver, kek and its own
// client library, and engine only to register its URL scheme. Nothing
// imports cmd/.
package archtest
