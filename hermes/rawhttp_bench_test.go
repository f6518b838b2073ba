package hermes

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/openmyst/openmyst/hermes/api"
	"github.com/openmyst/openmyst/payments"
)

// rawExchanger is the httpproc benchmark's load generator: every exchange
// request is encoded (JSON body and HTTP/1.1 head) before the timed part,
// and sent over persistent keep-alive connections to the hermes, one
// request in flight per connection, with a minimal response reader (status
// line, Content-Length, body). It is still real HTTP to the hermes' real
// server; it only keeps the client's own cost per message (net/http's
// transport, encoding the message, decoding the answer) off the two cores
// the hermes shares with it. What the hermes does per request is the same.
type rawExchanger struct {
	reqs  map[*payments.ExchangeMessage][]byte
	conns chan *rawConn
	all   []*rawConn
}

type rawConn struct {
	c   net.Conn
	br  *bufio.Reader
	buf []byte
}

// newRawExchanger encodes every message of work as a POST to addr's
// exchange endpoint and opens n connections to addr.
func newRawExchanger(tb testing.TB, addr string, work [][]*payments.ExchangeMessage, n int) *rawExchanger {
	tb.Helper()
	x := &rawExchanger{reqs: map[*payments.ExchangeMessage][]byte{}, conns: make(chan *rawConn, n)}
	for _, msgs := range work {
		for _, m := range msgs {
			body, err := m.MarshalJSON()
			if err != nil {
				tb.Fatal(err)
			}
			head := "POST " + api.PathExchange + " HTTP/1.1\r\nHost: " + addr + "\r\nContent-Type: " + api.ContentType +
				"\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n"
			x.reqs[m] = append([]byte(head), body...)
		}
	}
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			x.close()
			tb.Fatal(err)
		}
		rc := &rawConn{c: c, br: bufio.NewReaderSize(c, 4096)}
		x.all = append(x.all, rc)
		x.conns <- rc
	}
	tb.Cleanup(x.close)
	return x
}

func (x *rawExchanger) close() {
	for _, rc := range x.all {
		_ = rc.c.Close()
	}
	x.all = nil
}

// send posts m's pre-encoded request on a free connection and fails
// unless the answer is 200 with a promise.
func (x *rawExchanger) send(m *payments.ExchangeMessage) error {
	req, ok := x.reqs[m]
	if !ok {
		return errors.New("message not pre-encoded")
	}
	rc := <-x.conns
	defer func() { x.conns <- rc }()
	if _, err := rc.c.Write(req); err != nil {
		return err
	}
	status, body, err := rc.readResponse()
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("status %d: %s", status, body)
	}
	if !bytes.HasPrefix(body, []byte(`{"promise":`)) {
		return fmt.Errorf("answer without a promise: %q", body)
	}
	return nil
}

// readResponse reads one HTTP/1.1 response with a Content-Length body
// (what the hermes' server sends for its small JSON answers); the body is
// valid until the next call.
func (rc *rawConn) readResponse() (int, []byte, error) {
	line, err := rc.br.ReadSlice('\n')
	if err != nil {
		return 0, nil, err
	}
	// "HTTP/1.1 200 OK\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, nil, fmt.Errorf("bad status line %q", line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, nil, fmt.Errorf("bad status line %q", line)
	}
	length := -1
	for {
		h, err := rc.br.ReadSlice('\n')
		if err != nil {
			return 0, nil, err
		}
		h = bytes.TrimRight(h, "\r\n")
		if len(h) == 0 {
			break
		}
		k, v, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			return 0, nil, fmt.Errorf("bad header %q", h)
		}
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(bytes.TrimSpace(v))); err != nil || length < 0 || length > maxBody {
				return 0, nil, fmt.Errorf("bad Content-Length %q", v)
			}
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			return 0, nil, fmt.Errorf("unsupported Transfer-Encoding %q", v)
		}
	}
	if length < 0 {
		return 0, nil, errors.New("answer without Content-Length")
	}
	if cap(rc.buf) < length {
		rc.buf = make([]byte, length)
	}
	rc.buf = rc.buf[:length]
	if _, err := io.ReadFull(rc.br, rc.buf); err != nil {
		return 0, nil, err
	}
	return status, rc.buf, nil
}

// TestRawExchanger runs the benchmark's load generator against a real
// net/http server: answers on one keep-alive connection in turn, and a
// refusal or an answer without a promise is an error.
func TestRawExchanger(t *testing.T) {
	var n int
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		n++
		switch {
		case r.URL.Path != api.PathExchange || r.Header.Get("Content-Type") != api.ContentType || !bytes.HasPrefix(body, []byte("{")):
			http.Error(w, "bad request", http.StatusBadRequest)
		case n == 3:
			http.Error(w, `{"error":{"code":"unavailable"}}`, http.StatusServiceUnavailable)
		case n == 4:
			_, _ = w.Write([]byte(`{"other":1}`))
		default:
			_, _ = w.Write([]byte(`{"promise":{},"replayed":false}`))
		}
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	m := msg(t, testSigner("raw consumer"), testSigner("raw provider").Address(), 1, 10, 10, secret("raw"))
	x := newRawExchanger(t, ln.Addr().String(), [][]*payments.ExchangeMessage{{m}}, 1)
	for i, want := range []string{"", "", "status 503", "without a promise", ""} {
		err := x.send(m)
		switch {
		case want == "" && err != nil:
			t.Fatalf("request %d: %v", i+1, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Fatalf("request %d: error %v, want %q", i+1, err, want)
		}
	}
	if len(x.all) != 1 || n != 5 {
		t.Fatalf("%d connections, %d requests served", len(x.all), n)
	}
}
