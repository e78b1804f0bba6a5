package testenv

import (
	"fmt"
	"os"
	"testing"
)

// Main runs the tests of a package and then removes the binary FFBinary
// built, drops the database that PackageDatabase created and terminates
// the containers this process started. Call it from the package's TestMain:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
// It exits the process with the tests' exit code, or 1 if the tests passed
// but the cleanup failed.
func Main(m *testing.M) {
	mainRunning.Store(true)
	code := m.Run()
	removeFFBinary()
	if err := dropPackageDatabase(); err != nil {
		fmt.Fprintf(os.Stderr, "testenv: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	if err := terminateContainers(); err != nil {
		fmt.Fprintf(os.Stderr, "testenv: terminate containers: %v\n", err)
	}
	os.Exit(code)
}
