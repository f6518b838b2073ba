package defaults

import (
	"testing"
	"time"
)

func TestPositive(t *testing.T) {
	for _, c := range []struct{ v, want time.Duration }{
		{0, time.Second}, {-time.Minute, time.Second}, {time.Nanosecond, time.Nanosecond}, {time.Hour, time.Hour},
	} {
		if got := Positive(c.v, time.Second); got != c.want {
			t.Errorf("Positive(%v, 1s) = %v, want %v", c.v, got, c.want)
		}
	}
	if got := Positive(0.0, 2.5); got != 2.5 {
		t.Errorf("Positive(0.0, 2.5) = %v", got)
	}
	if got := Positive(uint(3), 7); got != 3 {
		t.Errorf("Positive(3, 7) = %v", got)
	}
}
