package main

import (
	"testing"

	"github.com/openmyst/openmyst/node"
)

// TestConfirmationsFor: -1 picks 0 on dev deployments and a real depth
// elsewhere; other negatives are refused.
func TestConfirmationsFor(t *testing.T) {
	for _, c := range []struct {
		flag int
		dev  bool
		want uint64
		ok   bool
	}{{-1, true, 0, true}, {-1, false, node.DefaultConfirmations, true}, {3, false, 3, true}, {0, false, 0, true}, {-2, true, 0, false}} {
		got, err := node.ConfirmationsFor(c.flag, c.dev)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ConfirmationsFor(%d, %v) = %d, %v", c.flag, c.dev, got, err)
		}
	}
}
