package store

import (
	"context"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/openmyst/openmyst/payments"
)

// writeSyscalls is this process's write system calls so far (syscw of
// /proc/self/io).
func writeSyscalls(t *testing.T) int64 {
	t.Helper()
	raw, err := os.ReadFile("/proc/self/io")
	if err != nil {
		t.Skipf("no /proc/self/io: %v", err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "syscw: "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Skip("no syscw in /proc/self/io")
	return 0
}

// TestSQLiteCommitWritesOnlyWAL checks that a group commit's only writes
// are its WAL frames (a header and a page each): the per-accept insert
// keeps no statement journal, whose copies of already-changed pages went
// to a temporary file, a write per page, once a transaction's journal
// passed 64 KiB. Fails with the insert's former ON CONFLICT DO NOTHING
// (which leaves NOT NULL columns on ABORT): 7,323 write system calls for
// 277 frames, 13.5 journal writes per accept.
func TestSQLiteCommitWritesOnlyWAL(t *testing.T) {
	old := checkpointEvery
	checkpointEvery = time.Hour // no checkpoint's writes in the count
	defer func() { checkpointEvery = old }()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hermes.db")
	st, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	provider := common.HexToAddress("0x00000000000000000000000000000000000000d1")
	var pv int64
	seq := 0
	// batch is n accepts of n new consumers (random keys, as in a
	// hermes with many consumers) with one provider.
	batch := func(n int) []Accept {
		out := make([]Accept, 0, n)
		for range n {
			seq++
			k := crypto.Keccak256Hash([]byte(strconv.Itoa(seq)))
			consumer := common.BytesToAddress(k[:20])
			p := payments.Promise{ChainID: big.NewInt(1337), Amount: big.NewInt(10), Fee: new(big.Int), Hashlock: payments.Hashlock(k[:]), Signature: make([]byte, 65)}
			out = append(out, Accept{
				Exchange: Exchange{Digest: crypto.Keccak256Hash(k[:]), Consumer: consumer, Provider: provider, AgreementID: big.NewInt(1), AgreementTotal: p.Amount,
					ConsumerPromise: p, HermesPromise: p, ExchangeSignature: make([]byte, 65)},
				Consumer: Consumer{Identity: consumer, Promised: p.Amount, Consumed: p.Amount, Settled: new(big.Int)},
				Provider: Provider{Identity: provider, Earned: p.Amount, Version: pv},
			})
			pv++
		}
		return out
	}
	for range 4 {
		if err := st.Commit(ctx, batch(500)); err != nil {
			t.Fatal(err)
		}
	}
	b := batch(500)
	fi, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	w0 := writeSyscalls(t)
	if err := st.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
	writes := writeSyscalls(t) - w0
	fi2, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	var pageSize int64
	if err := st.(*sqlStore).r.QueryRow(`PRAGMA page_size`).Scan(&pageSize); err != nil {
		t.Fatal(err)
	}
	frames := (fi2.Size() - fi.Size()) / (pageSize + 24)
	t.Logf("500 accepts: %d WAL frames, %d write system calls", frames, writes)
	if frames <= 0 || writes > 2*frames+8 {
		t.Fatalf("commit wrote %d times for %d WAL frames (want at most %d)", writes, frames, 2*frames+8)
	}
}
