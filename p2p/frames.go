package p2p

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// The sync protocols (discovery's proposals, quality's proofs and
// reports) answer a pull with frames: each item as a 4-byte big-endian
// length and its bytes, until the server closes the stream.

// ErrFrameLimit marks a frame over ReadFrames' limits; ErrTooManyFrames
// and ErrFrameTooLarge say which limit.
var (
	ErrFrameLimit    = errors.New("p2p: frame over the limits")
	ErrTooManyFrames = fmt.Errorf("%w: too many frames", ErrFrameLimit)
	ErrFrameTooLarge = fmt.Errorf("%w: frame too large", ErrFrameLimit)
)

// WriteFrames writes each item as a frame.
func WriteFrames(w io.Writer, items [][]byte) error {
	bw := bufio.NewWriter(w)
	var hdr [4]byte
	for _, raw := range items {
		binary.BigEndian.PutUint32(hdr[:], uint32(len(raw)))
		if _, err := bw.Write(hdr[:]); err != nil {
			return err
		}
		if _, err := bw.Write(raw); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// ReadFrames reads WriteFrames' items until EOF, at most maxItems of at
// most maxSize bytes each (else an error wrapping ErrTooManyFrames or
// ErrFrameTooLarge, before the item is read), calling fn on each; fn's
// error stops it.
func ReadFrames(r io.Reader, maxItems int, maxSize uint32, fn func(raw []byte) error) error {
	br := bufio.NewReader(r)
	var hdr [4]byte
	for i := 0; ; i++ {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if i >= maxItems {
			return fmt.Errorf("%w: more than %d", ErrTooManyFrames, maxItems)
		}
		if n > maxSize {
			return fmt.Errorf("%w: item %d of %d bytes, at most %d", ErrFrameTooLarge, i, n, maxSize)
		}
		raw := make([]byte, n)
		if _, err := io.ReadFull(br, raw); err != nil {
			return err
		}
		if err := fn(raw); err != nil {
			return fmt.Errorf("item %d: %w", i, err)
		}
	}
}

// PullFrames opens proto with p on h, bounded by timeout, half-closes
// its write side and reads the answer's frames (ReadFrames with maxItems
// and maxSize), handing each to fn. On any error (a frame over the
// limits, one fn refuses, a broken stream) the stream is reset, which
// cuts the peer off.
func PullFrames(ctx context.Context, h host.Host, p peer.ID, proto protocol.ID, timeout time.Duration, maxItems int, maxSize uint32, fn func(ctx context.Context, raw []byte) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	st, err := h.NewStream(ctx, p, proto)
	if err != nil {
		return err
	}
	defer st.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = st.SetDeadline(dl)
	}
	_ = st.CloseWrite()
	err = ReadFrames(st, maxItems, maxSize, func(raw []byte) error { return fn(ctx, raw) })
	if err != nil {
		_ = st.Reset()
	}
	return err
}
