package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openmyst/openmyst/tunnel"
)

func TestTunnelGenkey(t *testing.T) {
	out, err := runCLI(t, t.TempDir(), "tunnel", "genkey")
	if err != nil {
		t.Fatal(err)
	}
	var priv, pub string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "private" {
			priv = f[1]
		}
		if len(f) == 2 && f[0] == "public" {
			pub = f[1]
		}
	}
	k, err := tunnel.ParsePrivateKey(priv)
	if err != nil {
		t.Fatalf("private key %q: %v", priv, err)
	}
	if k.PublicKey().String() != pub {
		t.Fatalf("public key %q does not match the private key", pub)
	}
}

func TestTunnelConnectRejectsBadConfig(t *testing.T) {
	f := filepath.Join(t.TempDir(), "s.conf")
	if err := os.WriteFile(f, []byte("[Interface]\nPostUp = id\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := runCLI(t, t.TempDir(), "tunnel", "connect", "--tunnel.wg-config", f)
	if err == nil || !strings.Contains(err.Error(), "unsupported key") {
		t.Fatalf("want a wg-quick parse error, got %v", err)
	}
}
