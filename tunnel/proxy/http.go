package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"
)

// HTTP is an HTTP proxy: CONNECT tunnels for any TCP destination and
// plain-HTTP forwarding of absolute-URI requests.
type HTTP struct {
	s  *server
	tr *http.Transport
}

// NewHTTP returns an HTTP proxy sending traffic through n.
func NewHTTP(n Network, log *slog.Logger) *HTTP {
	return &HTTP{
		s: newServer(n, log),
		tr: &http.Transport{
			DialContext:           n.DialContext,
			Proxy:                 nil,
			MaxIdleConns:          16,
			IdleConnTimeout:       30 * time.Second,
			ResponseHeaderTimeout: 60 * time.Second,
			DisableCompression:    true,
		},
	}
}

// Serve accepts connections on ln until ctx ends; it closes ln and all
// connections before returning.
func (h *HTTP) Serve(ctx context.Context, ln net.Listener) error {
	defer h.tr.CloseIdleConnections()
	return h.s.serve(ctx, ln, h.handle)
}

// hopHeaders are removed when forwarding (RFC 9110 section 7.6.1).
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func (h *HTTP) handle(ctx context.Context, c net.Conn) {
	br := bufio.NewReader(c)
	for {
		c.SetReadDeadline(time.Now().Add(60 * time.Second))
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		c.SetReadDeadline(time.Time{})
		if req.Method == http.MethodConnect {
			h.connect(ctx, c, br, req)
			return
		}
		if !h.forward(ctx, c, req) {
			return
		}
	}
}

func writeStatus(w io.Writer, code int, msg string) {
	fmt.Fprintf(w, "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		code, http.StatusText(code), len(msg), msg)
}

func (h *HTTP) connect(ctx context.Context, c net.Conn, br *bufio.Reader, req *http.Request) {
	host := req.Host
	if _, port, err := net.SplitHostPort(host); err != nil || port == "" || port == "0" {
		writeStatus(c, http.StatusBadRequest, "CONNECT needs host:port\n")
		return
	}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	out, err := h.s.net.DialContext(dctx, "tcp", host)
	cancel()
	if err != nil {
		h.s.log.Debug("http connect failed", "dst", host, "err", err)
		writeStatus(c, http.StatusBadGateway, "connect failed\n")
		return
	}
	defer out.Close()
	if _, err := io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}
	relay(ctx, &bufferedConn{Conn: c, r: br}, out)
}

// forward proxies one absolute-URI request; it reports whether the client
// connection may carry another request.
func (h *HTTP) forward(ctx context.Context, c net.Conn, req *http.Request) bool {
	if !req.URL.IsAbs() || req.URL.Scheme != "http" || req.URL.Host == "" {
		writeStatus(c, http.StatusBadRequest, "want CONNECT or an absolute http:// URI\n")
		return false
	}
	keepAlive := !req.Close && !strings.EqualFold(req.Header.Get("Proxy-Connection"), "close")
	out := req.Clone(ctx)
	out.RequestURI = ""
	for _, hh := range hopHeaders {
		out.Header.Del(hh)
	}
	resp, err := h.tr.RoundTrip(out)
	if err != nil {
		h.s.log.Debug("http forward failed", "url", req.URL.Redacted(), "err", err)
		writeStatus(c, http.StatusBadGateway, "upstream request failed\n")
		return false
	}
	defer resp.Body.Close()
	for _, hh := range hopHeaders {
		resp.Header.Del(hh)
	}
	resp.Close = !keepAlive
	if err := resp.Write(c); err != nil {
		return false
	}
	return keepAlive
}
