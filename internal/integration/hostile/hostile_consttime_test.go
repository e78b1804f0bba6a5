package hostile

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// repoRoot is the module root, two directories above this file.
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("no caller")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

// callsIn returns the calls ("pkg.Func", "recv.Method" or "Func") made in
// the body of function fn (a method is named "Type.Method") of file, and
// whether any == or != compares an operand whose text names a MAC, a
// secret or a token.
func callsIn(t *testing.T, file, fn string) (calls map[string]bool, rawCompare []string) {
	t.Helper()
	fset := token.NewFileSet()
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	f, err := parser.ParseFile(fset, file, src, 0)
	if err != nil {
		t.Fatal(err)
	}
	calls = map[string]bool{}
	found := false
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok || fd.Body == nil || funcName(fd) != fn {
			continue
		}
		found = true
		ast.Inspect(fd.Body, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.CallExpr:
				calls[exprText(src, fset, x.Fun)] = true
			case *ast.BinaryExpr:
				if x.Op == token.EQL || x.Op == token.NEQ {
					for _, side := range []ast.Expr{x.X, x.Y} {
						s := strings.ToLower(exprText(src, fset, side))
						if strings.Contains(s, "mac") || strings.Contains(s, "secret") && !strings.Contains(s, "secretof") {
							rawCompare = append(rawCompare, fset.Position(x.Pos()).String())
						}
					}
				}
			}
			return true
		})
	}
	if !found {
		t.Fatalf("%s: no function %s", file, fn)
	}
	return calls, rawCompare
}

func funcName(fd *ast.FuncDecl) string {
	if fd.Recv == nil || len(fd.Recv.List) == 0 {
		return fd.Name.Name
	}
	typ := fd.Recv.List[0].Type
	if st, ok := typ.(*ast.StarExpr); ok {
		typ = st.X
	}
	if id, ok := typ.(*ast.Ident); ok {
		return id.Name + "." + fd.Name.Name
	}
	return fd.Name.Name
}

func exprText(src []byte, fset *token.FileSet, e ast.Expr) string {
	return string(src[fset.Position(e.Pos()).Offset:fset.Position(e.End()).Offset])
}

// TestConstantTimeComparisons pins where MACs, secrets and the admin token
// are compared (docs/reliability.md, "Constant-time comparisons"): each site
// calls crypto/hmac.Equal or crypto/subtle.ConstantTimeCompare and compares
// nothing secret with == or !=. A timing test cannot prove constant time on
// a shared machine; the guarantee is the standard library's, so the test
// checks that these functions are the ones used.
func TestConstantTimeComparisons(t *testing.T) {
	root := repoRoot(t)
	sites := []struct{ file, fn, want string }{
		{"driver/token.go", "CheckToken", "hmac.Equal"},
		{"contracts/token.go", "hmacEqual", "hmac.Equal"},
		{"contracts/validate.go", "Secret.Equal", "hmacEqual"},
		{"httpapi/handler.go", "Handler.authorizeAdmin", "subtle.ConstantTimeCompare"},
	}
	for _, s := range sites {
		calls, raw := callsIn(t, filepath.Join(root, s.file), s.fn)
		if !calls[s.want] {
			t.Errorf("%s %s does not call %s", s.file, s.fn, s.want)
		}
		if len(raw) > 0 {
			t.Errorf("%s %s compares a MAC or secret with == or != at %v", s.file, s.fn, raw)
		}
	}
	// The engine's cached verification compares MACs with hmac.Equal.
	src, err := os.ReadFile(filepath.Join(root, "engine/cache.go"))
	if err != nil || !strings.Contains(string(src), "hmac.Equal(") {
		t.Errorf("engine/cache.go: cached verification does not use hmac.Equal (%v)", err)
	}
	// Every driver decides tokens through contracts (CheckToken or VerifyWith)
	// and compares secrets through Secret.Equal (in driver.PlanSeed,
	// PlanRotate or directly), never by itself.
	for _, d := range []string{"memory", "sqlite", "postgres", "valkey"} {
		dir := filepath.Join(root, "backend", d)
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		var all strings.Builder
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			b, _ := os.ReadFile(f)
			all.Write(b)
		}
		text := all.String()
		if !strings.Contains(text, "driver.CheckToken(") && !strings.Contains(text, "driver.VerifyWith(") {
			t.Errorf("backend/%s decides tokens without driver.CheckToken or driver.VerifyWith", d)
		}
		for _, bad := range []string{"bytes.Equal(", "subtle.ConstantTimeCompare(", "hmac.Equal("} {
			if strings.Contains(text, bad) {
				t.Errorf("backend/%s compares bytes itself (%s): use contracts", d, bad)
			}
		}
	}
}
