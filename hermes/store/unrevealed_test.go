package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
)

// unrevealedRows is how many journal rows the plan tests give one
// provider: all revealed but the last three.
const unrevealedRows = 5000

// fillProvider inserts n journal rows of provider, all with R revealed
// except the last three, in one statement.
func fillProvider(t testing.TB, s *sqlStore, provider string, n int) {
	t.Helper()
	q := `WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < ?)
		INSERT INTO exchanges (digest, consumer, consumer_seq, provider, provider_seq, channel, agreement_id, agreement_total, hashlock,
			consumer_amount, promise_amount, consumed, consumer_promise, hermes_amount, hermes_promise, exchange_signature, r, created_at)
		SELECT CAST(printf('%032d', x) AS BLOB), '0xc', x, ?, x, '', '', '', CAST(printf('%032d', x) AS BLOB),
			'', '', '', '', '', '', x'01', CASE WHEN x > ? - 3 THEN NULL ELSE x'01' END, 0 FROM g`
	if s.d.dollar {
		q = `INSERT INTO exchanges (digest, consumer, consumer_seq, provider, provider_seq, channel, agreement_id, agreement_total, hashlock,
			consumer_amount, promise_amount, consumed, consumer_promise, hermes_amount, hermes_promise, exchange_signature, r, created_at)
		SELECT convert_to(lpad(x::text, 32, '0'), 'UTF8'), '0xc', x, $3, x, '', '', '', convert_to(lpad(x::text, 32, '0'), 'UTF8'),
			'', '', '', '', '', '', '\x01', CASE WHEN x > $2 - 3 THEN NULL ELSE '\x01'::bytea END, 0 FROM generate_series(1, $1::bigint) AS g(x)`
	}
	args := []any{n, provider, n}
	if s.d.dollar {
		args = []any{n, n, provider}
	}
	if _, err := s.w.Exec(q, args...); err != nil {
		t.Fatalf("fill journal: %v", err)
	}
}

// explain returns the plan text of rows (one column per line, or SQLite's
// four columns of which the last is the detail).
func explain(t testing.TB, rows *sql.Rows, err error) string {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for rows.Next() {
		v := make([]any, len(cols))
		p := make([]any, len(cols))
		for i := range v {
			p[i] = &v[i]
		}
		if err := rows.Scan(p...); err != nil {
			t.Fatal(err)
		}
		switch x := v[len(v)-1].(type) {
		case string:
			b.WriteString(x + "\n")
		case []byte:
			b.WriteString(string(x) + "\n")
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// checkUnrevealedPlan fails unless the unrevealed count of a provider with
// a long revealed history (in providerQuery, which loads a provider) reads the partial index exchanges_unrevealed
// (only unrevealed rows) and still counts right. Through the (provider,
// provider_seq) index or a table scan it reads the whole history, and a
// provider at the unrevealed limit is reloaded every second.
func checkUnrevealedPlan(t *testing.T, s *sqlStore) {
	ctx := context.Background()
	fillProvider(t, s, "0xp", unrevealedRows)
	var n int64
	if err := s.r.QueryRowContext(ctx, s.q(unrevealedQuery), "0xp").Scan(&n); err != nil || n != 3 {
		t.Fatalf("unrevealed count %d %v, want 3", n, err)
	}
	var plan string
	if s.d.dollar {
		if _, err := s.w.ExecContext(ctx, `ANALYZE exchanges`); err != nil {
			t.Fatal(err)
		}
		rows, err := s.r.QueryContext(ctx, `EXPLAIN (COSTS OFF) `+strings.NewReplacer("$1", "'0xp'", "$2", "'0xp'").Replace(s.q(providerQuery)))
		plan = explain(t, rows, err)
	} else {
		rows, err := s.r.QueryContext(ctx, `EXPLAIN QUERY PLAN `+providerQuery, "0xp", "0xp")
		plan = explain(t, rows, err)
	}
	if !strings.Contains(plan, "exchanges_unrevealed") {
		t.Fatalf("the unrevealed count of a provider with %d revealed rows does not use the partial index exchanges_unrevealed:\n%s", unrevealedRows-3, plan)
	}
}

func TestSQLiteUnrevealedCountUsesPartialIndex(t *testing.T) {
	st, err := OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "hermes.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	checkUnrevealedPlan(t, st.(*sqlStore))
}

// TestPostgresUnrevealedCountUsesPartialIndex checks the plan for an
// analyzed table holding a provider's long history, and the generic plan
// pgx's statement cache runs, made while the table is still empty.
func TestPostgresUnrevealedCountUsesPartialIndex(t *testing.T) {
	ctx := context.Background()
	s := freshPostgres(t)
	conn, err := s.w.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`SET plan_cache_mode = force_generic_plan`, `PREPARE unrevealed AS ` + s.q(providerQuery)} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	rows, err := conn.QueryContext(ctx, `EXPLAIN (COSTS OFF) EXECUTE unrevealed('0xp', '0xp')`)
	plan := explain(t, rows, err)
	_, _ = conn.ExecContext(ctx, `DEALLOCATE unrevealed`)
	_, _ = conn.ExecContext(ctx, `RESET plan_cache_mode`)
	_ = conn.Close()
	if !strings.Contains(plan, "exchanges_unrevealed") {
		t.Fatalf("the unrevealed count's generic plan on an empty journal does not use the partial index exchanges_unrevealed:\n%s", plan)
	}
	checkUnrevealedPlan(t, s)
}

// TestPostgresBatchLoadsUseIndexes checks the batch loads (consumersQuery,
// providersQuery) look each identity up in the (identity, seq) indexes and
// count unrevealed promises through the partial index, both in the
// generic plan made while the journal is empty (what pgx's statement cache
// may run after a fresh start) and on an analyzed journal with a long
// history: a plan that scans the journal would cost every first message
// time proportional to it.
func TestPostgresBatchLoadsUseIndexes(t *testing.T) {
	ctx := context.Background()
	s := freshPostgres(t)
	check := func(when, plan string, want ...string) {
		t.Helper()
		if strings.Contains(plan, "Seq Scan on exchanges") {
			t.Fatalf("%s: the plan scans the journal:\n%s", when, plan)
		}
		for _, idx := range want {
			if !strings.Contains(plan, idx) {
				t.Fatalf("%s: the plan does not use %s:\n%s", when, idx, plan)
			}
		}
	}
	conn, err := s.w.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`SET plan_cache_mode = force_generic_plan`, `PREPARE consumers AS ` + consumersQuery, `PREPARE providers AS ` + providersQuery} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	rows, err := conn.QueryContext(ctx, `EXPLAIN (COSTS OFF) EXECUTE consumers('{0xd,0xe}')`)
	check("consumers, generic plan", explain(t, rows, err), "exchanges_consumer_seq")
	rows, err = conn.QueryContext(ctx, `EXPLAIN (COSTS OFF) EXECUTE providers('{0xp,0xq}')`)
	check("providers, generic plan", explain(t, rows, err), "exchanges_provider_seq", "exchanges_unrevealed")
	for _, q := range []string{`DEALLOCATE consumers`, `DEALLOCATE providers`, `RESET plan_cache_mode`} {
		_, _ = conn.ExecContext(ctx, q)
	}
	_ = conn.Close()

	// One provider's long history, paid by 500 consumers.
	fillProvider(t, s, "0xp", unrevealedRows)
	for _, q := range []string{`UPDATE exchanges SET consumer = '0xc' || (consumer_seq % 500)`, `ANALYZE exchanges`} {
		if _, err := s.w.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	lit := func(q string) string { return strings.ReplaceAll(q, "$1::text[]", `'{0xp,0xq,0xd}'::text[]`) }
	rows, err = s.r.QueryContext(ctx, `EXPLAIN (COSTS OFF) `+lit(consumersQuery))
	check("consumers, analyzed", explain(t, rows, err), "exchanges_consumer_seq")
	rows, err = s.r.QueryContext(ctx, `EXPLAIN (COSTS OFF) `+lit(providersQuery))
	check("providers, analyzed", explain(t, rows, err), "exchanges_provider_seq", "exchanges_unrevealed")
}
