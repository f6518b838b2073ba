// Package storage is the node-local durable store: one bbolt file
// (<data-dir>/myst.db) holding settings, sessions, promises and whatever
// else a node must not forget across restarts.
//
// Every write happens inside an Update transaction that bbolt fsyncs before
// Update returns, so state that Update acknowledged is on disk. The file
// carries a schema version; Open runs the ordered migrations the file has
// not seen yet, each in its own transaction together with the version bump,
// and refuses to open a file written by a newer schema.
package storage
