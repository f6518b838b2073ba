package clocktest

import (
	"sync"
	"testing"
	"time"
)

func TestClockMovesOnlyWhenTold(t *testing.T) {
	start := time.Unix(1_800_000_000, 0)
	c := New(start)
	if !c.Now().Equal(start) {
		t.Fatalf("Now = %v, want %v", c.Now(), start)
	}
	time.Sleep(time.Millisecond)
	if !c.Now().Equal(start) {
		t.Fatal("the clock moved by itself")
	}
	c.Add(90 * time.Second)
	if got := c.Now().Sub(start); got != 90*time.Second {
		t.Fatalf("after Add: %v past start, want 90s", got)
	}
	c.Add(-time.Hour)
	c.Set(start.Add(time.Minute))
	if got := c.Now().Sub(start); got != time.Minute {
		t.Fatalf("after Set: %v past start, want 1m", got)
	}
}

func TestClockConcurrent(t *testing.T) {
	c := New(time.Unix(0, 0))
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				c.Add(time.Second)
				_ = c.Now()
			}
		}()
	}
	wg.Wait()
	if got := c.Now().Unix(); got != 800 {
		t.Fatalf("after 800 concurrent Adds of 1s: %d, want 800", got)
	}
}
