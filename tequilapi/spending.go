package tequilapi

import (
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/openmyst/openmyst/money"
)

// MaxSpendingPeriods bounds the periods GET /sessions/spending lists
// (the newest; the total still covers every session).
const MaxSpendingPeriods = 400

// MaxUTCOffset is the largest |utc_offset| GET /sessions/spending takes,
// in minutes (UTC+14:00, the furthest zone in use).
const MaxUTCOffset = 14 * 60

// SpendingDTO is the body of GET /sessions/spending: the consumer's
// sessions summed per calendar day or month.
type SpendingDTO struct {
	// By is the period: day or month.
	By string `json:"by"`
	// UTCOffset is the zone the periods are counted in, minutes east of
	// UTC (a session counts in the period of its start).
	UTCOffset int `json:"utc_offset"`
	// Periods are those with at least one session, newest first, at most
	// MaxSpendingPeriods.
	Periods []SpendingPeriod `json:"periods"`
	// Total sums every consumer session (its Period is "").
	Total SpendingPeriod `json:"total"`
}

// SpendingPeriod sums the consumer sessions that started in one period.
type SpendingPeriod struct {
	// Period is the day ("2006-01-02") or month ("2006-01").
	Period string `json:"period"`
	// Sessions counts the sessions, Running those still running.
	Sessions int `json:"sessions"`
	Running  int `json:"running"`
	// Seconds is their duration summed (a running session's until now).
	Seconds int64 `json:"seconds"`
	// Bytes is their tunnel traffic, up plus down.
	Bytes uint64 `json:"bytes"`
	// Spent is what was paid for them (agreement totals), wei.
	Spent string `json:"spent"`
}

// SpendingRoutes is GET /sessions/spending: svc's consumer sessions (role
// consumer) summed per day or month, for the consumer page's spending
// history.
func SpendingRoutes(svc SessionService, log *slog.Logger) []Route {
	if log == nil {
		log = slog.Default()
	}
	return []Route{{
		Method: http.MethodGet, Path: "/sessions/spending",
		Op: Operation{Summary: "The consumer's spending history: sessions, duration, traffic and MYST spent per day or month (by=day|month, " +
			"default day; utc_offset=minutes east of UTC the periods are counted in, default 0), newest first, and the total",
			Tags: []string{"sessions"}, Response: SpendingDTO{}, Errors: []int{http.StatusBadRequest}},
		Handler: func(w http.ResponseWriter, r *http.Request) {
			by, offset, err := ParseSpendingQuery(r.URL.Query())
			if err != nil {
				WriteError(w, log, NewError(http.StatusBadRequest, "bad_query", err.Error()))
				return
			}
			ss, err := svc.Sessions(r.Context())
			if err != nil {
				WriteError(w, log, err)
				return
			}
			WriteJSON(w, http.StatusOK, SumSpending(ss, by, offset, time.Now()))
		},
	}}
}

// ParseSpendingQuery reads GET /sessions/spending's parameters: by (day
// or month, default day) and utc_offset (minutes, |offset| ≤
// MaxUTCOffset, default 0). Unknown or repeated parameters are refused.
func ParseSpendingQuery(q url.Values) (by string, offset int, err error) {
	by = "day"
	for k, vs := range q {
		if len(vs) != 1 {
			return "", 0, fmt.Errorf("%s: given %d times", k, len(vs))
		}
		v := vs[0]
		switch k {
		case "by":
			if v != "day" && v != "month" {
				return "", 0, fmt.Errorf("by: %q is neither day nor month", v)
			}
			by = v
		case "utc_offset":
			n, err := strconv.Atoi(v)
			if err != nil || n < -MaxUTCOffset || n > MaxUTCOffset {
				return "", 0, fmt.Errorf("utc_offset: %q is not a whole number of minutes between %d and %d", v, -MaxUTCOffset, MaxUTCOffset)
			}
			offset = n
		default:
			return "", 0, fmt.Errorf("unknown parameter %q (want by, utc_offset)", k)
		}
	}
	return by, offset, nil
}

// SumSpending sums the consumer sessions of ss (any order) per by ("day"
// or "month") in the zone offset minutes east of UTC; running sessions
// count until now. Records with an unreadable start are left out; an
// unreadable amount counts as zero.
func SumSpending(ss []SessionDTO, by string, offset int, now time.Time) SpendingDTO {
	zone := time.FixedZone("", offset*60)
	layout := "2006-01-02"
	if by == "month" {
		layout = "2006-01"
	}
	type acc struct {
		p     SpendingPeriod
		spent *big.Int
	}
	add := func(a *acc, s SessionDTO, start time.Time) {
		a.p.Sessions++
		end, err := time.Parse(time.RFC3339, s.End)
		if s.End == "" || err != nil {
			end = now
			if s.End == "" {
				a.p.Running++
			}
		}
		if d := end.Sub(start); d > 0 {
			a.p.Seconds += int64(d / time.Second)
		}
		a.p.Bytes += s.Bytes
		if v, err := money.ParseWei(s.Paid); err == nil {
			a.spent.Add(a.spent, v)
		}
	}
	total := &acc{spent: new(big.Int)}
	periods := map[string]*acc{}
	for _, s := range ss {
		if s.Role != "consumer" {
			continue
		}
		start, err := time.Parse(time.RFC3339, s.Start)
		if err != nil {
			continue
		}
		key := start.In(zone).Format(layout)
		a := periods[key]
		if a == nil {
			a = &acc{p: SpendingPeriod{Period: key}, spent: new(big.Int)}
			periods[key] = a
		}
		add(a, s, start)
		add(total, s, start)
	}
	keys := make([]string, 0, len(periods))
	for k := range periods {
		keys = append(keys, k)
	}
	// Both layouts sort as text in time order; newest first.
	slices.Sort(keys)
	slices.Reverse(keys)
	if len(keys) > MaxSpendingPeriods {
		keys = keys[:MaxSpendingPeriods]
	}
	out := SpendingDTO{By: by, UTCOffset: offset, Periods: make([]SpendingPeriod, 0, len(keys))}
	for _, k := range keys {
		a := periods[k]
		a.p.Spent = a.spent.String()
		out.Periods = append(out.Periods, a.p)
	}
	total.p.Spent = total.spent.String()
	out.Total = total.p
	return out
}
