package hermes

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// CertFiles serves a TLS certificate from PEM files and reads them again
// when either file's modification time changes, so a renewed certificate
// is picked up without a restart (a broken renewal keeps the last good
// pair, logs the failure and reports it by Err).
type CertFiles struct {
	certFile, keyFile string
	log               *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	certMod time.Time
	keyMod  time.Time
	err     error
}

// LoadCertFiles reads the certificate chain and key; it fails if they do
// not load or do not match. Failed reloads go to log (nil: slog.Default()).
func LoadCertFiles(certFile, keyFile string, log *slog.Logger) (*CertFiles, error) {
	if log == nil {
		log = slog.Default()
	}
	c := &CertFiles{certFile: certFile, keyFile: keyFile, log: log}
	if err := c.reload(); err != nil {
		return nil, err
	}
	return c, nil
}

func modTime(path string) (time.Time, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return time.Time{}, err
	}
	return fi.ModTime(), nil
}

// reload reads the pair if a file changed. Call with c.mu held or before
// c is shared.
func (c *CertFiles) reload() error {
	cm, err := modTime(c.certFile)
	if err != nil {
		return fmt.Errorf("hermes: tls certificate: %w", err)
	}
	km, err := modTime(c.keyFile)
	if err != nil {
		return fmt.Errorf("hermes: tls key: %w", err)
	}
	if c.cert != nil && cm.Equal(c.certMod) && km.Equal(c.keyMod) {
		return nil
	}
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("hermes: tls certificate %s and key %s: %w", c.certFile, c.keyFile, err)
	}
	c.cert, c.certMod, c.keyMod = &cert, cm, km
	return nil
}

// GetCertificate implements tls.Config.GetCertificate.
func (c *CertFiles) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.reload()
	if err != nil && (c.err == nil || c.err.Error() != err.Error()) {
		c.log.Error("hermes: reloading the TLS certificate failed; serving the previous one", "err", err)
	}
	c.err = err
	return c.cert, nil
}

// Err is the last reload's error (nil: the files loaded).
func (c *CertFiles) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// TLSConfig is the server configuration the hermes API uses with c:
// TLS 1.2 or later.
func (c *CertFiles) TLSConfig() *tls.Config {
	return &tls.Config{GetCertificate: c.GetCertificate, MinVersion: tls.VersionTLS12}
}
