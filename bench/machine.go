package main

import (
	"fmt"
	"os"
	"runtime"
	"strings"
)

// machine describes where a run happened, for the line under its table:
// the figures are only comparable on the same machine and load.
type machine struct {
	CPUs       int
	GoVersion  string
	LoadBefore string // /proc/loadavg's 1, 5 and 15 minute averages
	LoadAfter  string
	Servers    []string // "PostgreSQL 15.14", "Valkey 8.0.2", ...
}

// newMachine reads the CPU count, the Go version and the load average now.
func newMachine() machine {
	return machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH, LoadBefore: loadAverage()}
}

// String is the machine line: "machine: 2 CPUs, go1.26.8 linux/amd64, load
// average 0.52 0.40 0.31 before, 1.90 0.80 0.45 after; PostgreSQL 15.14".
func (m machine) String() string {
	s := fmt.Sprintf("machine: %d CPUs, %s, load average %s before, %s after", m.CPUs, m.GoVersion, m.LoadBefore, m.LoadAfter)
	if len(m.Servers) > 0 {
		s += "; " + strings.Join(m.Servers, ", ")
	}
	return s
}

// loadAverage returns the first three fields of /proc/loadavg, or
// "unavailable" where there is none.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unavailable"
	}
	return parseLoadavg(string(b))
}

// parseLoadavg returns the 1, 5 and 15 minute averages of a /proc/loadavg
// line ("0.52 0.40 0.31 1/123 4567").
func parseLoadavg(s string) string {
	f := strings.Fields(s)
	if len(f) < 3 {
		return "unavailable"
	}
	return strings.Join(f[:3], " ")
}

// loadAverage1 returns the 1-minute load average, or "?" where there is
// none.
func loadAverage1() string {
	f := strings.Fields(loadAverage())
	if len(f) < 3 {
		return "?"
	}
	return f[0]
}
