package portmap

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func ssdpAnswer(st, loc string) string {
	return "HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nST: " + st + "\r\nUSN: uuid:x::" + st + "\r\nEXT:\r\nSERVER: Debian/12 UPnP/1.1 MiniUPnPd/2.3.1\r\nLOCATION: " + loc + "\r\n\r\n"
}

func TestParseSSDPResponse(t *testing.T) {
	gw := netip.MustParseAddr("192.168.7.1")
	const st = "urn:schemas-upnp-org:service:WANIPConnection:1"
	loc, err := parseSSDPResponse([]byte(ssdpAnswer(st, "http://192.168.7.1:40337/rootDesc.xml")), gw)
	if err != nil || loc.String() != "http://192.168.7.1:40337/rootDesc.xml" {
		t.Fatalf("location %v, %v", loc, err)
	}
	for name, b := range map[string]string{
		"another host":   ssdpAnswer(st, "http://192.168.7.9:40337/rootDesc.xml"),
		"a name":         ssdpAnswer(st, "http://router.lan:40337/rootDesc.xml"),
		"https":          ssdpAnswer(st, "https://192.168.7.1:40337/rootDesc.xml"),
		"no port":        ssdpAnswer(st, "http://192.168.7.1/rootDesc.xml"),
		"user":           ssdpAnswer(st, "http://u:p@192.168.7.1:40337/rootDesc.xml"),
		"other service":  ssdpAnswer("urn:schemas-upnp-org:service:Layer3Forwarding:1", "http://192.168.7.1:40337/rootDesc.xml"),
		"not found":      strings.Replace(ssdpAnswer(st, "http://192.168.7.1:40337/rootDesc.xml"), "200 OK", "404 Not Found", 1),
		"not a response": string(ssdpSearch(st)),
	} {
		if loc, err := parseSSDPResponse([]byte(b), gw); err == nil {
			t.Errorf("%s: accepted, location %v", name, loc)
		}
	}
}

func FuzzParseSSDPResponse(f *testing.F) {
	gw := netip.MustParseAddr("192.168.7.1")
	f.Add([]byte(ssdpAnswer("urn:schemas-upnp-org:service:WANIPConnection:2", "http://192.168.7.1:5000/d.xml")))
	f.Add([]byte("HTTP/1.1 200 OK\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		loc, err := parseSSDPResponse(b, gw)
		if err != nil {
			return
		}
		if a, err := netip.ParseAddr(loc.Hostname()); err != nil || a.Unmap() != gw || loc.Scheme != "http" || loc.Port() == "" {
			t.Fatalf("accepted location %v", loc)
		}
	})
}

// TestGatewayAnswersBounded: the client that reads the gateway's device
// description and its SOAP replies (goupnp decodes those whole) stops at
// maxGatewayBody bytes, whatever the gateway sends.
func TestGatewayAnswersBounded(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		chunk := bytes.Repeat([]byte("<a>"), 1<<12)
		for written := 0; written < 3*maxGatewayBody; written += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	lo := netip.MustParseAddr("127.0.0.1")
	n := New(Config{}).upnpNet(lo, lo)
	resp, err := n.http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != maxGatewayBody {
		t.Fatalf("read %d bytes of the gateway's answer, want the cap %d", len(got), maxGatewayBody)
	}
}
