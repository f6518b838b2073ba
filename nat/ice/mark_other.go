//go:build !linux

package ice

import (
	"errors"
	"syscall"

	"github.com/pion/transport/v3"
)

var errNoMark = errors.New("ice: socket marks (SO_MARK) exist on Linux only")

func newMarkedNet(uint32) (transport.Net, error) { return nil, errNoMark }

func setMark(syscall.RawConn, uint32) error { return errNoMark }

// MarkControl returns a socket Control function that fails: socket marks
// exist on Linux only.
func MarkControl(uint32) func(network, address string, c syscall.RawConn) error {
	return func(string, string, syscall.RawConn) error { return errNoMark }
}
