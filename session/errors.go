package session

import "errors"

// ErrPathLost ends a session whose tunnel path died: the selected ICE
// pair or TURN allocation went silent or failed, or the tunnel kept
// sending and received nothing. The consumer reconnects (node's reconnect
// policy); neither side charges or pays for a path that carries nothing.
var ErrPathLost = errors.New("path lost")
