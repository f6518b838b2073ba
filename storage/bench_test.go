package storage

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkDurablePut measures one acknowledged (fsynced) Update that puts
// a 200-byte promise record, against the floor measured in the same run:
// appending 200 bytes to a plain file and fsyncing it. Reports the ratio
// (x_fsync_append).
func BenchmarkDurablePut(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	db, err := Open(filepath.Join(dir, FileName))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	val := make([]byte, 200)

	f, err := os.OpenFile(filepath.Join(dir, "floor"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	const floorN = 50
	start := time.Now()
	for i := 0; i < floorN; i++ {
		if _, err := f.Write(val); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
	floor := time.Since(start) / floorN

	b.ResetTimer()
	start = time.Now()
	for i := 0; i < b.N; i++ {
		key := binary.BigEndian.AppendUint64(nil, uint64(i))
		if err := db.Update(ctx, func(tx *Tx) error { return tx.Put(BucketPromises, key, val) }); err != nil {
			b.Fatal(err)
		}
	}
	per := time.Since(start) / time.Duration(b.N)
	b.StopTimer()
	b.ReportMetric(float64(per)/float64(floor), "x_fsync_append")
}
