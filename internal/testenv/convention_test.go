package testenv

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/printer"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// skipOK is the marker a skip carries (on its line or the line above, with
// a reason) when it mentions a capability keyword but is legitimately not a
// missing-capability skip, e.g. a check that can only fail when NOT root.
const skipOK = "testenv:skip-ok"

// capability matches what a skip must not decide on its own: root, network
// namespaces, TUN, nft, wireguard tools, PostgreSQL, IPv6 or chromium.
// Such skips go through the Require* helpers (or SkipOrFail) so that CI
// fails instead of skipping.
var capability = regexp.MustCompile(`(?i)geteuid|\broot\b|netns|namespace|/dev/net/tun|\btun\b|\bnft\b|checktools|lookpath|wireguard|postgres|_dsn\b|\bavailable\(|ipv6|chrom`)

// TestSkipsGoThroughTestenv walks the module and fails for every t.Skip,
// Skipf or SkipNow outside this package that skips for a missing
// capability (judged from the if statement around it and its arguments),
// or that skips with a bare error value whose reason the reader cannot see.
// Skips guarded by testing.Short() alone are fine: -short is a choice,
// not a missing capability.
func TestSkipsGoThroughTestenv(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found from internal/testenv: %v", err)
	}
	self := filepath.Join(root, "internal", "testenv")
	var bad []string
	for _, path := range GoFiles(t, root, "testdata", "lib") {
		if filepath.Dir(path) == self {
			continue // the helpers and this checker's own test inputs
		}
		rel, _ := filepath.Rel(root, path)
		bad = append(bad, checkFile(t, path, rel)...)
	}
	for _, b := range bad {
		t.Error(b)
	}
	if len(bad) > 0 {
		t.Log("route these through internal/testenv (RequireRoot, RequireNetns, RequireTUN, RequireTools, RequirePostgres, SkipOrFail) so OPENMYST_REQUIRE_NETNS=1 fails them, or mark a legitimate one with // " + skipOK + ": <why>")
	}
}

func checkFile(t *testing.T, path, rel string) []string {
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(src, []byte(".Skip")) && !bytes.Contains(src, []byte("RequireEnv")) && !bytes.Contains(src, []byte(RequireEnv)) {
		return nil
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, src, parser.ParseComments)
	if err != nil {
		t.Fatalf("parse %s: %v", rel, err)
	}
	lines := strings.Split(string(src), "\n")
	var bad []string
	var stack []ast.Node
	ast.Inspect(f, func(n ast.Node) bool {
		if n == nil {
			stack = stack[:len(stack)-1]
			return true
		}
		stack = append(stack, n)
		// A second home for the skip-or-fail decision: reading the
		// variable itself instead of calling a helper.
		if lit, ok := n.(*ast.BasicLit); ok && strings.Contains(lit.Value, RequireEnv) {
			bad = append(bad, rel+":"+itoa(fset.Position(lit.Pos()).Line)+": reads "+RequireEnv+" outside internal/testenv (use its helpers)")
		}
		if sel, ok := n.(*ast.SelectorExpr); ok && sel.Sel.Name == "RequireEnv" {
			if x, ok := sel.X.(*ast.Ident); !ok || x.Name != "testenv" {
				bad = append(bad, rel+":"+itoa(fset.Position(sel.Pos()).Line)+": a RequireEnv outside internal/testenv (use its helpers)")
			}
		}
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok || (sel.Sel.Name != "Skip" && sel.Sel.Name != "Skipf" && sel.Sel.Name != "SkipNow") {
			return true
		}
		if _, ok := sel.X.(*ast.Ident); !ok {
			return true
		}
		line := fset.Position(call.Pos()).Line
		if marked(lines, line) {
			return true
		}
		var ifs *ast.IfStmt
		for i := len(stack) - 2; i >= 0; i-- {
			if s, ok := stack[i].(*ast.IfStmt); ok {
				ifs = s
				break
			}
			if _, ok := stack[i].(*ast.FuncLit); ok {
				break
			}
		}
		var text strings.Builder
		if ifs != nil {
			if isShort(ifs.Cond) && ifs.Init == nil {
				return true
			}
			if ifs.Init != nil {
				printer.Fprint(&text, fset, ifs.Init)
				text.WriteString("; ")
			}
			printer.Fprint(&text, fset, ifs.Cond)
			text.WriteString(" => ")
		}
		for _, a := range call.Args {
			printer.Fprint(&text, fset, a)
			text.WriteString(", ")
		}
		where := rel + ":" + itoa(line)
		switch {
		case capability.MatchString(text.String()):
			bad = append(bad, where+": skips for a missing capability outside internal/testenv: "+text.String())
		case len(call.Args) == 1 && isErrIdent(call.Args[0]):
			bad = append(bad, where+": skips with a bare error value (reason unclear; a missing capability must go through internal/testenv): "+text.String())
		}
		return true
	})
	return bad
}

func marked(lines []string, line int) bool {
	for _, l := range []int{line - 1, line - 2} { // 1-based: the call's line and the one above
		if l >= 0 && l < len(lines) && strings.Contains(lines[l], skipOK) {
			return true
		}
	}
	return false
}

func isShort(e ast.Expr) bool {
	call, ok := e.(*ast.CallExpr)
	if !ok {
		return false
	}
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	x, ok := sel.X.(*ast.Ident)
	return ok && x.Name == "testing" && sel.Sel.Name == "Short"
}

func isErrIdent(e ast.Expr) bool {
	id, ok := e.(*ast.Ident)
	return ok && (id.Name == "err" || strings.HasSuffix(id.Name, "Err"))
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return string(b[i:])
}
