// Package archtest holds the tests that keep the layout of DESIGN.md true:
// which package may import which. It has no code of its own.
package archtest
