package archtest

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/flowfabric/flowfabric-go"

type pkg struct {
	ImportPath string
	Imports    []string
}

// listPackages returns the module's packages with their direct imports,
// from `go list`, for the module in dir.
func listPackages(t *testing.T, dir string) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", "./...")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list in %s: %v", dir, err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		t.Fatalf("go list in %s found no packages", dir)
	}
	return pkgs
}

func local(imports []string) []string {
	var out []string
	for _, i := range imports {
		if strings.HasPrefix(i, module+"/") {
			out = append(out, strings.TrimPrefix(i, module+"/"))
		}
	}
	return out
}

// TestImportRules checks the dependency rules of the package layout.
func TestImportRules(t *testing.T) {
	for _, p := range listPackages(t, "../..") {
		name := strings.TrimPrefix(p.ImportPath, module+"/")
		for _, imp := range local(p.Imports) {
			switch {
			case strings.HasPrefix(imp, "cmd/"):
				t.Errorf("%s imports %s: nothing imports cmd/", name, imp)
			case name == "contracts":
				t.Errorf("contracts imports %s: contracts imports nothing of the module", imp)
			case name == "kek" && imp != "contracts":
				t.Errorf("kek imports %s: kek imports only contracts", imp)
			case name == "engine" && imp != "contracts" && imp != "kek":
				t.Errorf("engine imports %s: engine imports only contracts and kek", imp)
			case strings.HasPrefix(name, "backend/") && strings.HasPrefix(imp, "backend/"):
				t.Errorf("%s imports %s: drivers do not import each other", name, imp)
			case (name == "cli" || name == "httpapi") && imp != "engine" && imp != "contracts" && imp != "kek" && imp != "httpapi" && !strings.HasPrefix(imp, "backend/"):
				t.Errorf("%s imports %s: cli and httpapi import only engine, contracts, kek and drivers", name, imp)
			case name == "httpapi" && strings.HasPrefix(imp, "backend/"):
				t.Errorf("httpapi imports %s: the gateway works over any engine", imp)
			}
		}
	}
}

// TestExampleUsesOnlyExportedAPI checks that the third-party example driver
// imports no internal package of this module.
func TestExampleUsesOnlyExportedAPI(t *testing.T) {
	for _, p := range listPackages(t, "../../examples/boltstore") {
		for _, imp := range p.Imports {
			if strings.HasPrefix(imp, module+"/internal/") {
				t.Errorf("%s imports %s: a third-party driver can only use exported packages", p.ImportPath, imp)
			}
		}
	}
}
