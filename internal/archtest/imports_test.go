package archtest

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/flowfabric/flowfabric-go"

// moduleDirs are the repository's Go modules, relative to the root.
var moduleDirs = []string{".", "backend/postgres", "backend/valkey", "cmd/ff", "internal/testenv", "internal/integration", "examples/boltstore"}

type pkg struct {
	ImportPath string
	Dir        string
	GoFiles    []string
	Imports    []string
}

// listPackages returns the packages of the module in dir with their direct
// (non-test) imports, from `go list`.
func listPackages(t *testing.T, dir string) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", "./...")
	cmd.Dir = filepath.Join("..", "..", dir)
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

// allowed lists, per library package (or prefix ending in "/"), the
// packages of the module it may import.
var allowed = map[string][]string{
	"contracts":     {},
	"migrations":    {},
	"kek":           {"contracts"},
	"driver":        {"contracts", "kek"},
	"engine":        {"contracts", "driver", "kek"},
	"backend/":      {"contracts", "driver", "kek", "migrations", "engine"},
	"httpapi":       {"contracts", "engine", "kek", "internal/expo"},
	"worker":        {"contracts", "driver", "engine", "internal/expo"},
	"internal/expo": {},
	"console":       {"contracts", "engine"},
	"cli":           {"contracts", "engine", "kek", "httpapi", "console", "cli/bench"},
	"cli/":          {"contracts", "engine", "kek"},
	"conformance":   {"contracts", "driver", "engine", "kek"},
	"client":        {"contracts"},
}

func rulesFor(name string) ([]string, bool) {
	if r, ok := allowed[name]; ok {
		return r, true
	}
	for prefix, r := range allowed {
		if strings.HasSuffix(prefix, "/") && strings.HasPrefix(name, prefix) {
			return r, true
		}
	}
	return nil, false
}

// TestImportRules checks the dependency rules of the package layout (see
// the package doc) over every module of the repository.
func TestImportRules(t *testing.T) {
	for _, dir := range moduleDirs {
		for _, p := range listPackages(t, dir) {
			name := strings.TrimPrefix(p.ImportPath, module+"/")
			for _, imp := range local(p.Imports) {
				if strings.HasPrefix(imp, "cmd/") {
					t.Errorf("%s imports %s: nothing imports cmd/", name, imp)
				}
			}
			rules, ok := rulesFor(name)
			if !ok {
				continue
			}
			for _, imp := range local(p.Imports) {
				if !slices.Contains(rules, imp) {
					t.Errorf("%s imports %s; it may import only %v of this module", name, imp, rules)
				}
			}
		}
	}
}

// TestBackendsUseEngineOnlyToRegister checks that a driver calls nothing of
// engine but Register and RegisterMigrator: the Engine sits above drivers.
func TestBackendsUseEngineOnlyToRegister(t *testing.T) {
	checked := 0
	for _, dir := range moduleDirs {
		for _, p := range listPackages(t, dir) {
			name := strings.TrimPrefix(p.ImportPath, module+"/")
			if !strings.HasPrefix(name, "backend/") && !strings.HasPrefix(name, "examples/boltstore") {
				continue
			}
			for _, f := range p.GoFiles {
				checked++
				for _, sel := range engineSelectors(t, filepath.Join(p.Dir, f)) {
					if sel != "Register" && sel != "RegisterMigrator" {
						t.Errorf("%s/%s uses engine.%s: a backend uses engine only to register its scheme", name, f, sel)
					}
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no backend file checked")
	}
}

// engineSelectors returns the names the file selects from its engine import.
func engineSelectors(t *testing.T, path string) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	local := ""
	for _, im := range f.Imports {
		if strings.Trim(im.Path.Value, `"`) == module+"/engine" {
			local = "engine"
			if im.Name != nil {
				local = im.Name.Name
			}
		}
	}
	if local == "" {
		return nil
	}
	var out []string
	ast.Inspect(f, func(n ast.Node) bool {
		if s, ok := n.(*ast.SelectorExpr); ok {
			if id, ok := s.X.(*ast.Ident); ok && id.Name == local {
				out = append(out, s.Sel.Name)
			}
		}
		return true
	})
	return out
}

// TestExampleUsesOnlyExportedAPI checks that the third-party example driver
// imports neither an internal package nor the in-repo drivers.
func TestExampleUsesOnlyExportedAPI(t *testing.T) {
	for _, p := range listPackages(t, "examples/boltstore") {
		for _, imp := range p.Imports {
			if strings.HasPrefix(imp, module+"/internal/") {
				t.Errorf("%s imports %s: a third-party driver can only use exported packages", p.ImportPath, imp)
			}
		}
	}
}
