// Package archtest holds the tests that keep the package layout true:
// which package may import which. It has no code of its own.
package archtest
