package node

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/openmyst/openmyst/tunnel"
	"github.com/openmyst/openmyst/tunnel/userspace"
)

// RunWGQuick brings up a userspace tunnel from the wg-quick file path
// (cfg.Session is filled from it) and serves its proxies until ctx ends
// (`myst tunnel connect`), telling out where they listen and, at the
// end, the bytes moved.
func RunWGQuick(ctx context.Context, path string, cfg userspace.ClientConfig, out io.Writer) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read wg-quick config: %w", err)
	}
	if cfg.Session, err = tunnel.ParseWGQuick(data); err != nil {
		return err
	}
	c, err := userspace.Connect(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	if a := c.SOCKSAddr(); a != nil {
		fmt.Fprintf(out, "socks5 proxy on %s\n", a)
	}
	if a := c.HTTPAddr(); a != nil {
		fmt.Fprintf(out, "http proxy on %s\n", a)
	}
	<-ctx.Done()
	st := c.Stats()
	_, err = fmt.Fprintf(out, "disconnected: rx %d bytes, tx %d bytes\n", st.RxBytes, st.TxBytes)
	return err
}
