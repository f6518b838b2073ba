package tequilapi

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkRequestOverhead measures an authenticated GET /healthcheck-like
// route through the full Tequilapi handler (JSON 404 wrapper, mux, body
// limit, token check, logging) against a bare net/http ServeMux serving the
// same JSON, in the same run, and reports the ratio (x_bare_mux).
func BenchmarkRequestOverhead(b *testing.B) {
	e := newEnv(b, nil)
	tok := func() string {
		t, _, err := e.s.auth.login(Username, e.pw)
		if err != nil {
			b.Fatal(err)
		}
		return t
	}()
	body := HealthcheckResponse{Version: "x", Uptime: "1s"}
	e.s.Add(Route{Method: "GET", Path: "/bench", Op: Operation{Summary: "bench"},
		Handler: func(w http.ResponseWriter, _ *http.Request) { WriteJSON(w, 200, body) }})
	full := e.s.Handler()
	bare := http.NewServeMux()
	bare.HandleFunc("GET /bench", func(w http.ResponseWriter, _ *http.Request) { WriteJSON(w, 200, body) })

	req := httptest.NewRequest("GET", "/bench", nil)
	req.Host = "127.0.0.1:4050"
	req.Header.Set("Authorization", "Bearer "+tok)
	run := func(h http.Handler, n int) time.Duration {
		start := time.Now()
		for i := 0; i < n; i++ {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != 200 {
				b.Fatalf("status %d", w.Code)
			}
		}
		return time.Since(start)
	}
	const baseN = 2000
	baseline := run(bare, baseN)
	b.ResetTimer()
	d := run(full, b.N)
	b.StopTimer()
	perFull := float64(d) / float64(b.N)
	perBare := float64(baseline) / baseN
	b.ReportMetric(perFull/perBare, "x_bare_mux")
}
