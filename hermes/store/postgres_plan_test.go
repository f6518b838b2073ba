package store

import (
	"context"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/openmyst/openmyst/hermes/store/pgtest"
	"github.com/openmyst/openmyst/internal/testenv"
	"github.com/openmyst/openmyst/payments"
)

// freshSchema returns the DSN of an empty schema of the test database,
// dropped when the test ends.
func freshSchema(tb testing.TB) string {
	tb.Helper()
	return pgtest.FreshSchema(tb, testenv.RequirePostgres(tb))
}

// freshPostgres opens a store in a fresh schema, closed when the test ends.
func freshPostgres(tb testing.TB) *sqlStore {
	tb.Helper()
	st, err := OpenPostgres(context.Background(), freshSchema(tb))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = st.Close() })
	return st.(*sqlStore)
}

// TestPostgresCommitPlanProbesIndexes checks the plan PostgreSQL caches for
// the group commit (a generic plan, made while the table is empty and not
// analyzed, as after a fresh start) looks every version up in the unique
// (identity, seq) indexes: a plan that scans the exchanges table costs
// every commit time proportional to the whole journal.
func TestPostgresCommitPlanProbesIndexes(t *testing.T) {
	ctx := context.Background()
	conn, err := freshPostgres(t).w.Conn(ctx)
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
	args := strings.Repeat(`'{}', `, insertArity+4) + `0`
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

// TestPostgresCommitIsNotReplanned checks the group commit runs its
// cached generic plan instead of planning again on each commit: with the
// default plan_cache_mode PostgreSQL plans the first five executions of
// a prepared statement anew and keeps doing so while the generic plan's
// estimate is above theirs, which costs the server 0.12 ms of CPU per
// commit (docs/benchmarks.md).
func TestPostgresCommitIsNotReplanned(t *testing.T) {
	ctx := context.Background()
	st := freshPostgres(t)
	consumer := common.HexToAddress("0x00000000000000000000000000000000000000c1")
	provider := common.HexToAddress("0x00000000000000000000000000000000000000d1")
	const commits = 8
	for i := range int64(commits) {
		var r [32]byte
		r[0] = byte(i + 1)
		p := payments.Promise{ChainID: big.NewInt(1337), Amount: big.NewInt(10 * (i + 1)), Fee: new(big.Int), Hashlock: payments.Hashlock(r[:]), Signature: make([]byte, 65)}
		a := Accept{
			Exchange: Exchange{Digest: crypto.Keccak256Hash(r[:]), Consumer: consumer, Provider: provider, AgreementID: big.NewInt(1), AgreementTotal: p.Amount,
				ConsumerPromise: p, HermesPromise: p, ExchangeSignature: make([]byte, 65)},
			Consumer: Consumer{Identity: consumer, Promised: p.Amount, Consumed: p.Amount, Settled: new(big.Int), Version: i},
			Provider: Provider{Identity: provider, Earned: p.Amount, Version: i},
		}
		if err := st.Commit(ctx, []Accept{a}); err != nil {
			t.Fatalf("commit %d: %v", i, err)
		}
	}
	// Every connection that can run a commit, held at once so each is a
	// different one; their prepared statements are per connection.
	db := st.w
	if c := st.commit; c != nil {
		db = c
	}
	var generic, custom int64
	for range pgCommitters {
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		var g, c int64
		if err := conn.QueryRowContext(ctx, `SELECT COALESCE(SUM(generic_plans), 0), COALESCE(SUM(custom_plans), 0) FROM pg_prepared_statements
			WHERE statement LIKE 'INSERT INTO exchanges%'`).Scan(&g, &c); err != nil {
			t.Fatal(err)
		}
		generic, custom = generic+g, custom+c
	}
	if generic+custom != commits || custom != 0 {
		t.Fatalf("%d commits ran %d generic and %d custom plans, want %d generic and none custom", commits, generic, custom, commits)
	}
}
