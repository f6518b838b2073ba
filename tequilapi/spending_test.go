package tequilapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

type fakeHistory []SessionDTO

func (f fakeHistory) Sessions(context.Context) ([]SessionDTO, error) { return f, nil }

// TestSumSpending sums consumer sessions per day and month in the asked
// zone, newest first, leaves provider sessions out and counts a running
// session until now.
func TestSumSpending(t *testing.T) {
	now := time.Date(2026, 12, 3, 18, 0, 0, 0, time.UTC)
	ss := []SessionDTO{
		{Role: "consumer", Start: "2026-12-03T17:00:00Z", End: "", Bytes: 10, Paid: "5"},                      // running: 3600 s
		{Role: "consumer", Start: "2026-12-03T10:00:00Z", End: "2026-12-03T10:01:40Z", Bytes: 100, Paid: "7"}, // 100 s
		{Role: "provider", Start: "2026-12-03T11:00:00Z", End: "2026-12-03T12:00:00Z", Bytes: 1 << 30, Paid: "999"},
		{Role: "consumer", Start: "2026-12-02T23:30:00Z", End: "2026-12-02T23:30:10Z", Bytes: 1000, Paid: "1000000000000000000000"},
		{Role: "consumer", Start: "2026-11-30T12:00:00Z", End: "2026-11-30T12:00:01Z", Bytes: 1, Paid: "not a number"},
		{Role: "consumer", Start: "garbage", Paid: "1"},
	}
	got := SumSpending(ss, "day", 0, now)
	want := []SpendingPeriod{
		{Period: "2026-12-03", Sessions: 2, Running: 1, Seconds: 3700, Bytes: 110, Spent: "12"},
		{Period: "2026-12-02", Sessions: 1, Seconds: 10, Bytes: 1000, Spent: "1000000000000000000000"},
		{Period: "2026-11-30", Sessions: 1, Seconds: 1, Bytes: 1, Spent: "0"},
	}
	if !equalPeriods(got.Periods, want) || got.By != "day" {
		t.Fatalf("per UTC day:\n got %+v\nwant %+v", got.Periods, want)
	}
	if tot := got.Total; tot != (SpendingPeriod{Sessions: 4, Running: 1, Seconds: 3711, Bytes: 1111, Spent: "1000000000000000000012"}) {
		t.Fatalf("total %+v", tot)
	}
	// At UTC+01:00 the session of 23:30 UTC belongs to the next day.
	got = SumSpending(ss, "day", 60, now)
	if got.Periods[0].Period != "2026-12-03" || got.Periods[0].Sessions != 3 || got.UTCOffset != 60 {
		t.Fatalf("per day at UTC+1: %+v", got.Periods)
	}
	got = SumSpending(ss, "month", 0, now)
	if len(got.Periods) != 2 || got.Periods[0].Period != "2026-12" || got.Periods[0].Sessions != 3 || got.Periods[1].Period != "2026-11" {
		t.Fatalf("per month: %+v", got.Periods)
	}
	// The list is bounded; the total is not.
	var many []SessionDTO
	day := time.Date(2020, 1, 1, 12, 0, 0, 0, time.UTC)
	for i := range MaxSpendingPeriods + 10 {
		many = append(many, SessionDTO{Role: "consumer", Start: day.AddDate(0, 0, i).Format(time.RFC3339), End: day.AddDate(0, 0, i).Format(time.RFC3339), Paid: "1"})
	}
	got = SumSpending(many, "day", 0, now)
	if len(got.Periods) != MaxSpendingPeriods || got.Total.Sessions != MaxSpendingPeriods+10 || got.Periods[0].Period != day.AddDate(0, 0, MaxSpendingPeriods+9).Format("2006-01-02") {
		t.Fatalf("%d periods (newest %s), total %d", len(got.Periods), got.Periods[0].Period, got.Total.Sessions)
	}
}

func equalPeriods(a, b []SpendingPeriod) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestSpendingRoute: the route answers an empty history with an empty
// list (not null) and refuses bad parameters in words.
func TestSpendingRoute(t *testing.T) {
	code, body := serve(t, SpendingRoutes(fakeHistory(nil), nil), http.MethodGet, "/sessions/spending", "")
	var got SpendingDTO
	if code != http.StatusOK || json.Unmarshal([]byte(body), &got) != nil || got.Periods == nil || got.Total.Spent != "0" || got.By != "day" {
		t.Fatalf("empty history: %d %s", code, body)
	}
	h := fakeHistory{{Role: "consumer", Start: "2026-12-03T10:00:00Z", End: "2026-12-03T10:00:05Z", Paid: "3"}}
	code, body = serve(t, SpendingRoutes(h, nil), http.MethodGet, "/sessions/spending?by=month&utc_offset=-300", "")
	if code != http.StatusOK || json.Unmarshal([]byte(body), &got) != nil || len(got.Periods) != 1 || got.Periods[0].Period != "2026-12" || got.UTCOffset != -300 {
		t.Fatalf("by month: %d %s", code, body)
	}
	for _, q := range []string{"by=week", "utc_offset=900", "utc_offset=1.5", "by=day&by=day", "country=DE"} {
		code, body := serve(t, SpendingRoutes(h, nil), http.MethodGet, "/sessions/spending?"+q, "")
		if code != http.StatusBadRequest || !strings.Contains(body, "bad_query") {
			t.Errorf("?%s: %d %s, want 400 bad_query", q, code, body)
		}
	}
}

// FuzzSpendingQuery: any query either parses to day or month within the
// offset bounds or is refused.
func FuzzSpendingQuery(f *testing.F) {
	for _, s := range []string{"", "by=day", "by=month&utc_offset=60", "utc_offset=-840", "utc_offset=841", "by=year", "by=day&by=month", "x=1", "utc_offset=%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		by, off, err := ParseSpendingQuery(q)
		if err != nil {
			return
		}
		if (by != "day" && by != "month") || off < -MaxUTCOffset || off > MaxUTCOffset {
			t.Fatalf("%q accepted as %q, %d", raw, by, off)
		}
	})
}
