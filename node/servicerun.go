package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/p2p"
	"github.com/openmyst/openmyst/tequilapi"
	"github.com/openmyst/openmyst/tequilapi/client"
)

// ServiceRun is one run of `myst service`: a provider with its own
// libp2p host on the given chain, and optionally its Tequilapi.
type ServiceRun struct {
	// Options are the served provider's options; Location decides its
	// location.
	Options  ServeOptions
	Location LocationOptions
	// Bootstrap and Listen are the libp2p bootstrap peers and listen
	// multiaddrs; PublicAddrsOnly limits the advertised addresses.
	Bootstrap, Listen []string
	PublicAddrsOnly   bool
	// DataDir is the node's data dir (the provider's state is in
	// <DataDir>/provider).
	DataDir string
	// Chain is the open chain; Signer the unlocked provider identity.
	Chain  *Chain
	Signer identity.Signer
	// API, when set, serves the provider's Tequilapi routes;
	// ShowPassword prints a newly generated password.
	API          *tequilapi.Config
	ShowPassword func(string)
	// Out receives progress and what is served; Log the events.
	Out io.Writer
	Log *slog.Logger
}

// Check checks the options without side effects (before the chain is
// opened and the identity unlocked).
func (r ServiceRun) Check() error {
	if _, err := r.Options.Config(); err != nil {
		return err
	}
	if _, err := r.Location.Config(); err != nil {
		return err
	}
	_, err := p2p.ParseBootstrap(r.Bootstrap)
	return err
}

// RunService serves the provider until ctx ends.
func RunService(ctx context.Context, r ServiceRun) error {
	pc, err := r.Options.Config()
	if err != nil {
		return err
	}
	lc, err := r.Location.Config()
	if err != nil {
		return err
	}
	if pc.Bootstrap, err = p2p.ParseBootstrap(r.Bootstrap); err != nil {
		return err
	}
	locator, closeDB, err := OpenLocator(lc, r.Log)
	if err != nil {
		return err
	}
	defer closeDB()
	out := r.Out
	pc.DataDir, pc.Signer, pc.ListenAddrs, pc.NAT, pc.Locator = filepath.Join(r.DataDir, "provider"), r.Signer, r.Listen, true, locator
	pc.Progress, pc.Log, pc.PublicAddrsOnly = func(m string) { fmt.Fprintln(out, m) }, r.Log, r.PublicAddrsOnly
	pc.NATReport = pc.Progress // "nat: relay-only (AutoNAT: private ...), reachable from 3 of 3 peers"
	svc, err := ServeProvider(ctx, ServeConfig{Provider: pc, Chain: func(context.Context) (*chain.Client, common.Address, error) {
		return r.Chain.Client, r.Chain.Hermes, nil
	}})
	if err != nil {
		return err
	}
	defer svc.Close()
	p := svc.Provider()
	l := p.Location()
	fmt.Fprintf(out, "provider %s serving: %s, %s MYST/h, %s MYST/GiB, wireguard %s, peer %s\n",
		r.Signer.Address().Hex(), l.Country, r.Options.PriceHour, r.Options.PriceGiB, p.Exit.Endpoint(), p.P2P.ID())
	fmt.Fprintf(out, "  wireguard endpoint: %s\n", p.AdvertisedEndpoint())
	fmt.Fprintf(out, "  location: country %s, city %q, asn %d, ip type %s\n", l.Country, l.City, l.ASN, l.IPType)
	for _, a := range p.P2P.Multiaddrs() {
		fmt.Fprintf(out, "  p2p: %s\n", a)
	}
	if r.API == nil {
		<-ctx.Done()
		return nil
	}
	srv, err := ServiceAPI(*r.API, r.ShowPassword, svc)
	if err != nil {
		return err
	}
	ln, err := srv.Listen()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "tequilapi: http://%s (GET /sessions, GET /earnings, POST /settle, GET /settlements, GET /service/caps)\n", ln.Addr())
	return srv.Serve(ctx, ln)
}

// ServiceViaDaemon is `myst service` while a daemon runs for the data
// dir (c is logged in to it): the daemon holds the provider database, the
// ports and the keys, so instead of a second provider that would refuse
// it, the daemon serves the one provider. If it serves one already
// (--provider.serve; its flags apply) this reports it; otherwise it
// starts r's provider in the daemon (PUT /service, on the daemon's p2p
// host and chain; identity: the address id or the daemon's default,
// unlocked there with the passphrase of passFile or $MYST_PASSPHRASE).
// Either way it returns once the daemon serves the provider.
func ServiceViaDaemon(ctx context.Context, c *client.Client, r ServiceRun, id, passFile string) error {
	w := r.Out
	caps, err := c.ServiceCaps(ctx)
	switch {
	case client.IsCode(err, tequilapi.CodeNotFound):
		if caps, err = startInDaemon(ctx, c, r, id, passFile); err != nil {
			return err
		}
		fmt.Fprintf(w, "started provider %s in the daemon running for this data dir (its p2p host and chain); it serves until the daemon stops\n", caps.Provider)
	case client.IsCode(err, codeProviderStarting):
		fmt.Fprintln(w, "the daemon running for this data dir is starting its provider (myst daemon --provider.serve; see its log); not starting a second one")
		return nil
	case err != nil:
		return fmt.Errorf("ask the daemon running for this data dir: %w", err)
	default:
		fmt.Fprintf(w, "provider %s is served by the daemon running for this data dir (myst daemon --provider.serve; its flags apply): not starting a second one\n", caps.Provider)
	}
	bw := "unlimited"
	if caps.SessionBandwidth > 0 {
		bw = fmt.Sprintf("%d B/s per direction", caps.SessionBandwidth)
	}
	quota := "unlimited"
	if caps.Quota.Limit > 0 {
		quota = fmt.Sprintf("%d of %d bytes used (exhausted: %t)", caps.Quota.Used, caps.Quota.Limit, caps.Quota.Exhausted)
	}
	fmt.Fprintf(w, "  sessions: %d of at most %d; bandwidth per session: %s; access: %s\n  traffic %s: %s\n",
		caps.Sessions, caps.MaxSessions, bw, caps.Access, caps.Quota.Month, quota)
	return nil
}

// startInDaemon unlocks the provider identity in the daemon and starts
// r's provider there.
func startInDaemon(ctx context.Context, c *client.Client, r ServiceRun, id, passFile string) (tequilapi.ServiceCapsDTO, error) {
	if err := r.Check(); err != nil {
		return tequilapi.ServiceCapsDTO{}, err
	}
	if id == "" {
		ids, err := c.Identities(ctx)
		if err != nil {
			return tequilapi.ServiceCapsDTO{}, fmt.Errorf("the daemon's identities: %w", err)
		}
		for _, i := range ids {
			if i.Default {
				id = i.ID
			}
		}
		if id == "" {
			return tequilapi.ServiceCapsDTO{}, errors.New("the daemon has no default identity: give --identity")
		}
	}
	addr, err := identity.ParseAddress(id)
	if err != nil {
		return tequilapi.ServiceCapsDTO{}, fmt.Errorf("--identity: %w", err)
	}
	switch pw, err := ReadPassphrase(passFile); {
	case err == nil:
		if _, err := c.Unlock(ctx, addr, pw); err != nil {
			return tequilapi.ServiceCapsDTO{}, fmt.Errorf("unlock %s in the daemon: %w", addr.Hex(), err)
		}
	case !errors.Is(err, ErrNoPassphrase): // none: it may be unlocked in the daemon already
		return tequilapi.ServiceCapsDTO{}, err
	}
	opts, err := json.Marshal(ServiceOptions{Serve: r.Options, Location: r.Location})
	if err != nil {
		return tequilapi.ServiceCapsDTO{}, err
	}
	return c.StartService(ctx, tequilapi.ServiceStartRequest{Identity: addr.Hex(), Options: opts})
}
