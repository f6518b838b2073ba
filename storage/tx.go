package storage

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Tx is one transaction; it is valid only inside the function passed to
// DB.Update or DB.View. Byte slices it returns are copies and stay valid
// after the transaction ends.
type Tx struct {
	tx *bolt.Tx
}

func (t *Tx) bucket(name string) (*bolt.Bucket, error) {
	b := t.tx.Bucket([]byte(name))
	if b == nil {
		return nil, fmt.Errorf("%w: %q", ErrNoBucket, name)
	}
	return b, nil
}

// CreateBuckets creates the named buckets if they do not exist yet (for
// migrations).
func (t *Tx) CreateBuckets(names ...string) error {
	for _, n := range names {
		if _, err := t.tx.CreateBucketIfNotExists([]byte(n)); err != nil {
			return fmt.Errorf("storage: create bucket %q: %w", n, err)
		}
	}
	return nil
}

// Get returns a copy of the value under key in bucket and whether it exists.
func (t *Tx) Get(bucket string, key []byte) ([]byte, bool, error) {
	b, err := t.bucket(bucket)
	if err != nil {
		return nil, false, err
	}
	v := b.Get(key)
	if v == nil {
		return nil, false, nil
	}
	return append([]byte(nil), v...), true, nil
}

// Put stores value under key in bucket (read-write transactions only).
func (t *Tx) Put(bucket string, key, value []byte) error {
	b, err := t.bucket(bucket)
	if err != nil {
		return err
	}
	if err := b.Put(key, value); err != nil {
		return fmt.Errorf("storage: put %q/%x: %w", bucket, key, err)
	}
	return nil
}

// Delete removes key from bucket; deleting a missing key is not an error.
func (t *Tx) Delete(bucket string, key []byte) error {
	b, err := t.bucket(bucket)
	if err != nil {
		return err
	}
	if err := b.Delete(key); err != nil {
		return fmt.Errorf("storage: delete %q/%x: %w", bucket, key, err)
	}
	return nil
}

// ForEach calls fn for every key/value of bucket in ascending key order,
// stopping at the first error fn returns. k and v are valid only during
// the call; copy them to keep them.
func (t *Tx) ForEach(bucket string, fn func(k, v []byte) error) error {
	b, err := t.bucket(bucket)
	if err != nil {
		return err
	}
	return b.ForEach(fn)
}

// NextSequence returns an increasing integer for bucket, for use as an
// ordered key (read-write transactions only).
func (t *Tx) NextSequence(bucket string) (uint64, error) {
	b, err := t.bucket(bucket)
	if err != nil {
		return 0, err
	}
	n, err := b.NextSequence()
	if err != nil {
		return 0, fmt.Errorf("storage: next sequence of %q: %w", bucket, err)
	}
	return n, nil
}
