package client

import (
	"os/exec"
	"strings"
	"testing"
)

// sqlUsersAllowed are the packages allowed to import database/sql into the
// client: they only implement sql.Scanner/driver.Valuer on their types and
// register no driver.
var sqlUsersAllowed = map[string]bool{
	"github.com/holiman/uint256": true, // via go-ethereum/common
}

// TestClientLinksNoSQLDriver keeps the provider's hermes client free of the
// hermes server, its store and every SQL driver: it links only the wire
// contract (hermes/api). A driver registers itself with database/sql, so
// any package importing database/sql that is not known to be a mere
// Scanner/Valuer implementation fails the test, as do the known drivers and
// the hermes server packages by name.
func TestClientLinksNoSQLDriver(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go command not found (go test puts GOROOT/bin on PATH): %v", err)
	}
	out, err := exec.Command(goBin, "list", "-deps", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "github.com/openmyst/openmyst/hermes/client").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	denied := []string{
		"github.com/openmyst/openmyst/hermes/store", "github.com/jackc/pgx", "github.com/lib/pq",
		"modernc.org/sqlite", "github.com/mattn/go-sqlite3",
	}
	var bad []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		pkg := fields[0]
		if pkg == "github.com/openmyst/openmyst/hermes" {
			bad = append(bad, pkg+" (the hermes service)")
		}
		for _, d := range denied {
			if pkg == d || strings.HasPrefix(pkg, d+"/") {
				bad = append(bad, pkg)
			}
		}
		for _, imp := range fields[1:] {
			if imp == "database/sql" && !sqlUsersAllowed[pkg] {
				bad = append(bad, pkg+" (imports database/sql)")
			}
		}
	}
	if len(bad) > 0 {
		t.Fatalf("hermes/client links server-side or SQL packages:\n%s", strings.Join(bad, "\n"))
	}
}
