package deptest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// sentinels returns the package-level errors.New variables of the
// non-test Go files under root that are not in an errors.go, and those
// (anywhere) whose message starts with an upper-case letter, as
// "path:line: why".
func sentinels(root string) ([]string, error) {
	var bad []string
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.VAR {
				continue
			}
			for _, spec := range gd.Specs {
				for _, v := range spec.(*ast.ValueSpec).Values {
					call, ok := v.(*ast.CallExpr)
					if !ok {
						continue
					}
					sel, ok := call.Fun.(*ast.SelectorExpr)
					if !ok || sel.Sel.Name != "New" || len(call.Args) != 1 {
						continue
					}
					if x, ok := sel.X.(*ast.Ident); !ok || x.Name != "errors" {
						continue
					}
					where := rel + ":" + strconv.Itoa(fset.Position(v.Pos()).Line)
					if filepath.Base(path) != "errors.go" {
						bad = append(bad, where+": sentinel error outside errors.go")
					}
					if lit, ok := call.Args[0].(*ast.BasicLit); ok {
						if msg, err := strconv.Unquote(lit.Value); err == nil && msg != "" && unicode.IsUpper([]rune(msg)[0]) {
							bad = append(bad, where+": sentinel message starts upper-case: "+msg)
						}
					}
				}
			}
		}
		return nil
	})
	return bad, err
}

// Every sentinel error of the module is in its package's errors.go, with
// a lower-case message.
func TestSentinelsInErrorsGo(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	bad, err := sentinels(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bad {
		t.Error(b)
	}
}
