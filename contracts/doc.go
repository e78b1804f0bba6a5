// Package contracts is the FlowFabric-Go contract expressed as Go types: the
// arguments and outcomes of every operation, the closed error taxonomy, the
// validation rules for every value, the token format and its MAC, partition
// routing, and the JSON envelopes that every backend must produce byte for
// byte.
//
// It performs no I/O. Drivers import it for everything they share (token
// signing and checking, keystore decisions, identifiers, cursors, error
// constructors), so that no driver copies contract logic.
package contracts
