package storage

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// FileName is the name of the node database inside the data dir.
const FileName = "myst.db"

// Buckets created by the built-in migrations. Other packages use these
// names with Tx.Get/Put/Delete/ForEach; a package that needs a new bucket
// adds a migration to Migrations.
const (
	// BucketMeta holds the schema version; not for application data.
	BucketMeta = "meta"
	// BucketSettings holds small node settings (e.g. the default identity).
	BucketSettings = "settings"
	// BucketSessions holds session history records.
	BucketSessions = "sessions"
	// BucketPromises holds payment promises a node issued or received.
	BucketPromises = "promises"
)

var versionKey = []byte("schema_version")

// Errors returned (wrapped) by this package.
var (
	// ErrNoBucket is returned when a transaction names a bucket that no
	// migration created.
	ErrNoBucket = errors.New("storage: no such bucket")
	// ErrFutureSchema is returned by Open when the file was written by a
	// newer openmyst with migrations this binary does not know.
	ErrFutureSchema = errors.New("storage: database schema is newer than this binary")
	// ErrLocked is returned by Open when another process holds the file.
	ErrLocked = errors.New("storage: database is locked by another process")
)

// Migration moves the schema from Version-1 to Version. Apply runs inside
// the same transaction that records Version, so a crash leaves either the
// old or the new schema, never half of one.
type Migration struct {
	// Version is the schema version after Apply; versions start at 1 and
	// are consecutive.
	Version int
	// Name says what the migration does (for logs and errors).
	Name string
	// Apply changes the schema.
	Apply func(tx *Tx) error
}

// Migrations is the ordered schema history of the node database. Append
// only: never edit or reorder a released migration.
var Migrations = []Migration{
	{Version: 1, Name: "create settings, sessions and promises buckets", Apply: func(tx *Tx) error {
		return tx.CreateBuckets(BucketSettings, BucketSessions, BucketPromises)
	}},
}

// DB is an open node database. It is safe for concurrent use.
type DB struct {
	bolt *bolt.DB
	path string
}

type options struct {
	migrations  []Migration
	lockTimeout time.Duration
}

// Option configures Open.
type Option func(*options)

// WithMigrations replaces the built-in Migrations: tests, and files with
// a schema of their own (the chain package's state file).
func WithMigrations(ms []Migration) Option {
	return func(o *options) { o.migrations = ms }
}

// WithLockTimeout sets how long Open waits for another process to release
// the file (default 1s).
func WithLockTimeout(d time.Duration) Option {
	return func(o *options) { o.lockTimeout = d }
}

// Open opens (creating if needed) the database at path and migrates it to
// the newest schema.
func Open(path string, opts ...Option) (*DB, error) {
	o := options{migrations: Migrations, lockTimeout: time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	if err := checkMigrations(o.migrations); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("storage: create directory for %s: %w", path, err)
	}
	b, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: o.lockTimeout})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("%w: %s (is a myst daemon running with this data dir?)", ErrLocked, path)
		}
		return nil, fmt.Errorf("storage: open %s: %w", path, err)
	}
	db := &DB{bolt: b, path: path}
	if err := db.migrate(o.migrations); err != nil {
		_ = b.Close()
		return nil, err
	}
	return db, nil
}

func checkMigrations(ms []Migration) error {
	for i, m := range ms {
		if m.Version != i+1 {
			return fmt.Errorf("storage: migration %q has version %d, want %d", m.Name, m.Version, i+1)
		}
		if m.Apply == nil {
			return fmt.Errorf("storage: migration %d %q has no Apply", m.Version, m.Name)
		}
	}
	return nil
}

func (db *DB) migrate(ms []Migration) error {
	current, err := db.SchemaVersion()
	if err != nil {
		return err
	}
	if current > len(ms) {
		return fmt.Errorf("%w: %s has schema version %d, this binary knows up to %d", ErrFutureSchema, db.path, current, len(ms))
	}
	for _, m := range ms[current:] {
		err := db.bolt.Update(func(btx *bolt.Tx) error {
			meta, err := btx.CreateBucketIfNotExists([]byte(BucketMeta))
			if err != nil {
				return err
			}
			if err := m.Apply(&Tx{tx: btx}); err != nil {
				return err
			}
			return meta.Put(versionKey, encodeVersion(m.Version))
		})
		if err != nil {
			return fmt.Errorf("storage: migration %d (%s) on %s: %w", m.Version, m.Name, db.path, err)
		}
	}
	return nil
}

func encodeVersion(v int) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(v))
}

// SchemaVersion returns the schema version recorded in the file (0 for a
// new file).
func (db *DB) SchemaVersion() (int, error) {
	var v int
	err := db.bolt.View(func(btx *bolt.Tx) error {
		meta := btx.Bucket([]byte(BucketMeta))
		if meta == nil {
			return nil
		}
		raw := meta.Get(versionKey)
		if raw == nil {
			return nil
		}
		if len(raw) != 8 {
			return fmt.Errorf("storage: %s: schema version has %d bytes, want 8", db.path, len(raw))
		}
		u := binary.BigEndian.Uint64(raw)
		if u > 1<<31 {
			return fmt.Errorf("storage: %s: schema version %d out of range", db.path, u)
		}
		v = int(u)
		return nil
	})
	return v, err
}

// Path returns the database file path.
func (db *DB) Path() string { return db.path }

// Close closes the database file.
func (db *DB) Close() error {
	if err := db.bolt.Close(); err != nil {
		return fmt.Errorf("storage: close %s: %w", db.path, err)
	}
	return nil
}

// Update runs fn in a read-write transaction. The transaction commits (and
// is fsynced) if fn returns nil, and rolls back otherwise. ctx is checked
// before the transaction starts.
func (db *DB) Update(ctx context.Context, fn func(tx *Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("storage: update: %w", err)
	}
	return db.bolt.Update(func(btx *bolt.Tx) error { return fn(&Tx{tx: btx}) })
}

// View runs fn in a read-only transaction.
func (db *DB) View(ctx context.Context, fn func(tx *Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("storage: view: %w", err)
	}
	return db.bolt.View(func(btx *bolt.Tx) error { return fn(&Tx{tx: btx}) })
}

// GetSetting returns the value stored under key in the settings bucket, and
// whether it exists.
func (db *DB) GetSetting(ctx context.Context, key string) ([]byte, bool, error) {
	var val []byte
	var ok bool
	err := db.View(ctx, func(tx *Tx) error {
		var err error
		val, ok, err = tx.Get(BucketSettings, []byte(key))
		return err
	})
	return val, ok, err
}

// GetJSON reads the JSON value under key in bucket into v, reporting
// whether it exists (v is left as is when it does not).
func (db *DB) GetJSON(ctx context.Context, bucket string, key []byte, v any) (bool, error) {
	var ok bool
	err := db.View(ctx, func(tx *Tx) error {
		b, found, err := tx.Get(bucket, key)
		if err != nil || !found {
			return err
		}
		ok = true
		return json.Unmarshal(b, v)
	})
	return ok, err
}

// PutSetting durably stores value under key in the settings bucket.
func (db *DB) PutSetting(ctx context.Context, key string, value []byte) error {
	return db.Update(ctx, func(tx *Tx) error {
		return tx.Put(BucketSettings, []byte(key), value)
	})
}
