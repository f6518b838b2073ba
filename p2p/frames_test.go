package p2p

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzReadFrames: the sync framing never yields more than the limits
// allow, and what writeFrames wrote reads back the same.
func FuzzReadFrames(f *testing.F) {
	var good bytes.Buffer
	if err := WriteFrames(&good, [][]byte{[]byte("a"), {}, []byte("xyz")}); err != nil {
		f.Fatal(err)
	}
	f.Add(good.Bytes())
	f.Add([]byte{0, 0, 0, 9, 1})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		var items [][]byte
		err := ReadFrames(bytes.NewReader(data), 3, 8, func(raw []byte) error {
			items = append(items, raw)
			return nil
		})
		if len(items) > 3 {
			t.Fatalf("%d items past the limit of 3", len(items))
		}
		for _, it := range items {
			if len(it) > 8 {
				t.Fatalf("item of %d bytes past the limit of 8", len(it))
			}
		}
		if err == nil {
			var again bytes.Buffer
			if werr := WriteFrames(&again, items); werr != nil || !bytes.Equal(again.Bytes(), data) {
				t.Fatalf("round trip: %v", werr)
			}
		}
	})
}

// TestReadFramesLimits: too many frames and a frame too large are
// refused by name before the item is read, both as ErrFrameLimit.
func TestReadFramesLimits(t *testing.T) {
	var b bytes.Buffer
	if err := WriteFrames(&b, [][]byte{[]byte("ab"), []byte("cd"), []byte("ef")}); err != nil {
		t.Fatal(err)
	}
	n := 0
	err := ReadFrames(bytes.NewReader(b.Bytes()), 2, 8, func([]byte) error { n++; return nil })
	if !errors.Is(err, ErrTooManyFrames) || !errors.Is(err, ErrFrameLimit) || errors.Is(err, ErrFrameTooLarge) || n != 2 {
		t.Fatalf("too many: %v after %d", err, n)
	}
	n = 0
	err = ReadFrames(bytes.NewReader(b.Bytes()), 9, 1, func([]byte) error { n++; return nil })
	if !errors.Is(err, ErrFrameTooLarge) || !errors.Is(err, ErrFrameLimit) || n != 0 {
		t.Fatalf("too large: %v after %d", err, n)
	}
	if err := ReadFrames(bytes.NewReader(b.Bytes()), 3, 2, func([]byte) error { return nil }); err != nil {
		t.Fatalf("at the limits: %v", err)
	}
}
