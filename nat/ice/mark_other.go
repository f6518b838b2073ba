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
