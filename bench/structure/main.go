// Command structure prints the shape of the Go code under a folder, the
// figures the layout's closing notes give: per package, its non-test files,
// their lines and its exported identifiers (top-level names, and exported
// methods of exported types); then every non-test function longer than 80
// lines, longest first.
//
//	go run ./bench/structure .
package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

func main() {
	root := "."
	if len(os.Args) > 1 {
		root = os.Args[1]
	}
	type pkg struct{ files, lines, exported int }
	pkgs := map[string]*pkg{}
	var long []string
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "node_modules" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			return nil
		}
		dir, _ := filepath.Rel(root, filepath.Dir(p))
		k := pkgs[dir]
		if k == nil {
			k = &pkg{}
			pkgs[dir] = k
		}
		k.files++
		k.lines += fset.File(f.Pos()).LineCount()
		for _, decl := range f.Decls {
			switch d := decl.(type) {
			case *ast.FuncDecl:
				if d.Name.IsExported() && (d.Recv == nil || recvExported(d.Recv)) {
					k.exported++
				}
				n := fset.Position(d.End()).Line - fset.Position(d.Pos()).Line + 1
				if n > 80 {
					long = append(long, fmt.Sprintf("%4d %s:%s", n, p, d.Name.Name))
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						if s.Name.IsExported() {
							k.exported++
						}
					case *ast.ValueSpec:
						for _, n := range s.Names {
							if n.IsExported() {
								k.exported++
							}
						}
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "structure:", err)
		os.Exit(1)
	}
	var names []string
	for n := range pkgs {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Println("package files lines exported")
	for _, n := range names {
		k := pkgs[n]
		fmt.Printf("%s %d %d %d\n", n, k.files, k.lines, k.exported)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(long)))
	fmt.Println("functions over 80 lines:", len(long))
	for _, l := range long {
		fmt.Println(l)
	}
}

// recvExported reports whether a method's receiver type is exported.
func recvExported(r *ast.FieldList) bool {
	t := r.List[0].Type
	if s, ok := t.(*ast.StarExpr); ok {
		t = s.X
	}
	if g, ok := t.(*ast.IndexExpr); ok {
		t = g.X
	}
	id, ok := t.(*ast.Ident)
	return ok && id.IsExported()
}
