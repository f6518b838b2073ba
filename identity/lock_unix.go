//go:build unix

package identity

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockFileName is the keystore's lock file (a dot file, so scans skip it).
const lockFileName = ".lock"

// lockDir takes an exclusive flock on the keystore directory's lock file,
// so that processes sharing the keystore (daemon and CLI) never both add
// the same key. The returned function releases it.
func lockDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFileName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("identity: open keystore lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("identity: lock keystore: %w", err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		_ = f.Close()
	}, nil
}
