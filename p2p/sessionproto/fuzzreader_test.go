package sessionproto

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"
)

// bytesStream is a DeadlineReader over fixed bytes (deadlines are moot:
// reads never block).
type bytesStream struct{ *bytes.Reader }

func (bytesStream) SetReadDeadline(time.Time) error { return nil }

// FuzzReader feeds arbitrary byte streams to a Reader: it must never
// panic, must end with io.EOF or an error wrapping ErrMalformed, and every
// message it yields must validate.
func FuzzReader(f *testing.F) {
	var stream []byte
	for _, m := range sampleMessages(f) {
		p, err := Encode(m)
		if err != nil {
			f.Fatal(err)
		}
		stream = append(stream, frame(p)...)
	}
	f.Add(stream)
	f.Add(stream[:len(stream)-3])
	f.Add([]byte{0, 1, 0, 1})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bytesStream{bytes.NewReader(data)}, time.Second)
		for i := 0; ; i++ {
			m, err := r.ReadMessage(context.Background())
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, ErrMalformed) {
					t.Fatalf("message %d: unexpected error kind %v", i, err)
				}
				return
			}
			if err := m.Validate(); err != nil {
				t.Fatalf("message %d does not validate: %v", i, err)
			}
		}
	})
}
