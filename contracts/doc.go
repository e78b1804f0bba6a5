// Package contracts is what applications see of FlowFabric-Go
// (docs/spec.md): the arguments and outcomes of every operation, their
// validation rules, the token format, the list cursor, the closed error
// taxonomy (*Error and its sentinels, for errors.Is), and the JSON
// envelopes that every backend produces byte for byte.
//
// It performs no I/O and imports nothing of this module. The decisions that
// storage drivers share (keystore plans, token signing and checking,
// partition routing) live in package driver.
package contracts
