//go:build !unix

package identity

// lockDir is a no-op where flock is unavailable; the in-process mutex
// still serializes writers of one Manager.
func lockDir(string) (func(), error) { return func() {}, nil }
