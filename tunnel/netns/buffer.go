package netns

import (
	"bytes"
	"sync"
)

// LockedBuffer is a bytes.Buffer safe for a process's output pipe copier
// and a test reading it at the same time (the namespace processes here,
// the NAT lab's children).
type LockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *LockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written so far.
func (b *LockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
