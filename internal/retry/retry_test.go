package retry

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestDelay(t *testing.T) {
	b := Backoff{Initial: time.Second, Max: 5 * time.Second}
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 5 * time.Second, 60: 5 * time.Second} {
		if got := b.Delay(n); got != want {
			t.Errorf("Delay(%d) = %s, want %s", n, got, want)
		}
	}
	if got := (Backoff{Initial: time.Second}).Delay(4); got != 8*time.Second {
		t.Errorf("uncapped Delay(4) = %s", got)
	}
	fixed := Backoff{Initial: time.Second, Max: time.Second}
	if fixed.Delay(1) != time.Second || fixed.Delay(9) != time.Second {
		t.Error("Max == Initial must give a fixed interval")
	}
	j := Backoff{Initial: 100 * time.Millisecond, Max: time.Second, Jitter: true}
	for i := 0; i < 200; i++ {
		if d := j.Delay(2); d < 100*time.Millisecond || d >= 300*time.Millisecond {
			t.Fatalf("jittered Delay(2) = %s, want in [100ms, 300ms)", d)
		}
	}
}

func TestDo(t *testing.T) {
	ctx := context.Background()
	b := Backoff{Initial: time.Microsecond}
	calls := 0
	err := Do(ctx, b, 5, func(_ context.Context, n int) error {
		calls++
		if n != calls {
			t.Fatalf("n = %d on call %d", n, calls)
		}
		if n < 3 {
			return errors.New("transient")
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("Do = %v after %d calls, want nil after 3", err, calls)
	}

	boom := errors.New("boom")
	calls = 0
	err = Do(ctx, b, 5, func(context.Context, int) error { calls++; return Permanent(boom) })
	if err != boom || calls != 1 {
		t.Fatalf("permanent: Do = %v after %d calls", err, calls)
	}

	calls = 0
	err = Do(ctx, b, 3, func(context.Context, int) error { calls++; return boom })
	if !errors.Is(err, ErrExhausted) || !errors.Is(err, boom) || calls != 3 {
		t.Fatalf("exhausted: Do = %v after %d calls", err, calls)
	}

	cctx, cancel := context.WithCancel(ctx)
	calls = 0
	err = Do(cctx, Backoff{Initial: time.Hour}, 0, func(context.Context, int) error {
		calls++
		cancel()
		return boom
	})
	if !errors.Is(err, context.Canceled) || !errors.Is(err, boom) || calls != 1 {
		t.Fatalf("cancelled: Do = %v after %d calls", err, calls)
	}
	if err := Do(cctx, b, 0, func(context.Context, int) error { t.Fatal("called with a done ctx"); return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("done ctx: %v", err)
	}
}

func TestSleep(t *testing.T) {
	if err := Sleep(context.Background(), time.Microsecond); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep on a done ctx = %v", err)
	}
}
