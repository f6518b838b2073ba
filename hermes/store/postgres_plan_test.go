package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/openmyst/openmyst/internal/testenv"
)

// TestPostgresCommitPlanProbesIndexes checks the plan PostgreSQL caches for
// the group commit (a generic plan, made while the table is empty and not
// analyzed, as after a fresh start) looks every version up in the unique
// (identity, seq) indexes: a plan that scans the exchanges table costs
// every commit time proportional to the whole journal.
func TestPostgresCommitPlanProbesIndexes(t *testing.T) {
	dsn := testenv.RequirePostgres(t)
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	schema := fmt.Sprintf("hermes_plan_%d", time.Now().UnixNano())
	if _, err := admin.Exec(`CREATE SCHEMA ` + schema); err != nil {
		t.Fatal(err)
	}
	defer func() { _, _ = admin.Exec(`DROP SCHEMA ` + schema + ` CASCADE`) }()
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	ctx := context.Background()
	st, err := OpenPostgres(ctx, dsn+sep+"search_path="+schema)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	conn, err := st.(*sqlStore).w.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, q := range []string{
		`SET plan_cache_mode = force_generic_plan`,
		`PREPARE group_commit AS ` + pgCommit,
	} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	defer func() { _, _ = conn.ExecContext(ctx, `DEALLOCATE group_commit`) }()
	args := strings.Repeat(`'{}', `, 21) + `0`
	rows, err := conn.QueryContext(ctx, `EXPLAIN (COSTS OFF) EXECUTE group_commit(`+args+`)`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan strings.Builder
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan.WriteString(line + "\n")
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	p := plan.String()
	if strings.Contains(p, "Seq Scan on exchanges") || strings.Contains(p, "Hash Join") {
		t.Fatalf("the group commit's generic plan scans the journal:\n%s", p)
	}
	for _, idx := range []string{"exchanges_consumer_seq", "exchanges_provider_seq"} {
		if !strings.Contains(p, idx) {
			t.Fatalf("the group commit's generic plan does not use %s:\n%s", idx, p)
		}
	}
}
