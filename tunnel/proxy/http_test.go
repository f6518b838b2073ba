package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func startHTTP(t *testing.T) string { return startProxy(t, NewHTTP(&hostNet{}, quiet())) }

func TestHTTPForwardAndConnect(t *testing.T) {
	var sawHop bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawHop = r.Header.Get("Proxy-Connection") != "" || r.Header.Get("Proxy-Authorization") != ""
		fmt.Fprintf(w, "path=%s", r.URL.Path)
	}))
	defer srv.Close()
	addr := startHTTP(t)
	tr := &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: addr})}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	for i := 0; i < 3; i++ { // several requests on one kept-alive proxy connection
		req, _ := http.NewRequest("GET", srv.URL+"/a/b", nil)
		req.Header.Set("Proxy-Authorization", "Basic x")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "path=/a/b" {
			t.Fatalf("body %q", b)
		}
	}
	if sawHop {
		t.Error("hop-by-hop proxy headers were forwarded upstream")
	}

	// CONNECT, with bytes pipelined right after the request.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	host := srv.Listener.Addr().String()
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\nGET /tunnel HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", host, host)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("CONNECT: %v %v", resp, err)
	}
	inner, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(inner.Body)
	if string(b) != "path=/tunnel" {
		t.Fatalf("through CONNECT: %q", b)
	}
}

func TestHTTPRejects(t *testing.T) {
	addr := startHTTP(t)
	for _, req := range []string{
		"GET /relative HTTP/1.1\r\nHost: x\r\n\r\n",                 // not a proxy request
		"GET https://example.com/ HTTP/1.1\r\nHost: x\r\n\r\n",      // https must use CONNECT
		"CONNECT example.com HTTP/1.1\r\nHost: example.com\r\n\r\n", // no port
		"CONNECT nx.test:443 HTTP/1.1\r\nHost: nx.test:443\r\n\r\n", // dial fails
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, req)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		c.Close()
		if err != nil {
			t.Fatalf("%q: %v", req, err)
		}
		if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusBadGateway {
			t.Errorf("%q answered %d", strings.SplitN(req, "\r\n", 2)[0], resp.StatusCode)
		}
	}
}
