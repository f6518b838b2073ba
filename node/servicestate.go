package node

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strings"

	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/internal/strictjson"
	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/storage"
	"github.com/openmyst/openmyst/tequilapi"
	"github.com/openmyst/openmyst/tunnel"
	"github.com/openmyst/openmyst/tunnel/kernel"
)

// providerStateSetting is the node database setting (storage
// BucketSettings) holding the daemon provider's desired state.
const providerStateSetting = "provider_state"

// providerState is the daemon provider's desired state, written before
// PUT or DELETE /service answers and restored at daemon start.
type providerState struct {
	// State is tequilapi.ProviderOn or tequilapi.ProviderOff.
	State string `json:"state"`
	// Request started the provider that runs or ran last; nil: the
	// daemon's --provider.serve provider.
	Request *tequilapi.ServiceStartRequest `json:"request,omitempty"`
}

// loadProviderState reads the remembered state (found false: none).
func loadProviderState(ctx context.Context, db *storage.DB) (providerState, bool, error) {
	var st providerState
	b, found, err := db.GetSetting(ctx, providerStateSetting)
	if err != nil || !found {
		return st, false, err
	}
	if err := strictjson.Unmarshal(b, &st); err != nil {
		return st, false, fmt.Errorf("node: the remembered provider state: %w", err)
	}
	if st.State != tequilapi.ProviderOn && st.State != tequilapi.ProviderOff {
		return st, false, fmt.Errorf("node: the remembered provider state %q is neither on nor off", st.State)
	}
	return st, true, nil
}

// saveProviderState durably stores st.
func saveProviderState(ctx context.Context, db *storage.DB, st providerState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if err := db.PutSetting(ctx, providerStateSetting, b); err != nil {
		return fmt.Errorf("node: remember the provider state: %w", err)
	}
	return nil
}

// restoreProvider starts (or not) the daemon's provider as the node
// database remembers it (PUT/DELETE /service of an earlier run), else
// as the flags say (Provider.Serve). A remembered state wins over the
// flags: a provider stopped from the dashboard stays off. A remembered
// provider that cannot start (identity locked, ...) is logged, not
// fatal: the daemon runs, and PUT /service starts it.
func (n *DaemonNode) restoreProvider(ctx context.Context, svc *ProviderService) error {
	prov := n.Config.Provider
	st, found, err := loadProviderState(ctx, n.DB)
	if err != nil {
		return err
	}
	if prov.Serve != nil {
		n.setLastProv(&servedProvider{id: prov.Identity, cfg: *prov.Serve, loc: prov.Location})
	}
	if found && st.Request != nil {
		sp, err := n.resolveStart(*st.Request, prov.Identity.PassphraseFile)
		if err != nil {
			n.Log.Error("provider: the remembered provider's options are refused; PUT /service starts one", "err", err)
			return nil
		}
		n.setLastProv(&sp)
	}
	switch {
	case prov.Announce:
		if found && st.State == tequilapi.ProviderOn {
			n.Log.Warn("provider: not starting the provider remembered on: this daemon announces a proposal of its own (--provider.announce)")
		}
		return nil
	case found && st.State == tequilapi.ProviderOff:
		n.Log.Info("provider: off, as it was stopped (DELETE /service, the dashboard's switch) before the restart; PUT /service starts it",
			"provider_serve_flag", prov.Serve != nil)
		return nil
	case found && st.Request != nil:
		n.Log.Info("provider: starting the provider started with PUT /service before the restart, with its options")
		if err := n.serveProvider(ctx, svc, *n.lastProvider(), providerRetry); err != nil {
			n.Log.Error("provider: the remembered provider does not start; PUT /service starts it", "err", err)
		}
		return nil
	case prov.Serve != nil:
		return n.serveProvider(ctx, svc, *n.lastProvider(), providerRetry)
	case found:
		n.Log.Warn("provider: remembered on as the --provider.serve provider, but the daemon runs without --provider.serve: not serving")
	}
	return nil
}

// setLastProv records sp as the provider PUT /service {} starts again.
func (n *DaemonNode) setLastProv(sp *servedProvider) {
	n.lastProvMu.Lock()
	n.lastProv = sp
	n.lastProvMu.Unlock()
}

// lastProvider is the provider PUT /service {} starts again (nil: none).
func (n *DaemonNode) lastProvider() *servedProvider {
	n.lastProvMu.Lock()
	defer n.lastProvMu.Unlock()
	return n.lastProv
}

// resolveStart is the provider a PUT /service request with options or
// provider options describes (passFile: the identity's passphrase file,
// else it must be unlocked or $MYST_PASSPHRASE set).
func (n *DaemonNode) resolveStart(req tequilapi.ServiceStartRequest, passFile string) (servedProvider, error) {
	ref := IdentityRef{PassphraseFile: passFile}
	if req.Identity != "" {
		a, err := identity.ParseAddress(req.Identity)
		if err != nil {
			return servedProvider{}, tequilapi.FieldError("identity", err.Error())
		}
		ref.Address = a
	} else if req.Provider != nil {
		ref.Address = n.Config.Provider.Identity.Address // --provider.identity
	}
	var o ServiceOptions
	switch {
	case req.Provider != nil:
		var err error
		if o, err = n.providerOptions(*req.Provider); err != nil {
			return servedProvider{}, err
		}
	default:
		if err := strictjson.Unmarshal(req.Options, &o); err != nil {
			return servedProvider{}, tequilapi.FieldError("options", err.Error())
		}
	}
	bad := func(err error) error { return tequilapi.NewError(http.StatusBadRequest, "bad_options", err.Error()) }
	pc, err := o.Serve.Config()
	if err != nil {
		return servedProvider{}, bad(err)
	}
	lc := n.Config.Provider.Location // --location.* of --provider.serve
	switch {
	case req.Provider != nil && lc != (LocationConfig{}):
		if req.Provider.Country != "" {
			lc.Override.Country = req.Provider.Country
		}
	default:
		if req.Provider != nil && req.Provider.Country != "" {
			o.Location.Country = req.Provider.Country
		}
		if lc, err = o.Location.Config(); err != nil {
			return servedProvider{}, bad(err)
		}
	}
	if pc.ExitMode == tunnel.ModeKernel {
		if c := netAdminCapability(kernel.CheckNetAdmin, exec.LookPath); !c.Available {
			return servedProvider{}, tequilapi.FieldError("exit_mode", "kernel: "+c.Reason+"; use userspace")
		}
	}
	r := req
	return servedProvider{id: ref, cfg: pc, loc: lc, req: &r}, nil
}

// providerOptions are the daemon's flags (Provider.Defaults) with the
// options a node runner chose; each bad option is named.
func (n *DaemonNode) providerOptions(p tequilapi.ProviderOptionsDTO) (ServiceOptions, error) {
	o := n.Config.Provider.Defaults
	o.Serve.ExitMode = p.ExitMode
	o.Serve.PriceHour, o.Serve.PriceGiB = strings.TrimSpace(p.PricePerHour), strings.TrimSpace(p.PricePerGiB)
	o.Serve.Caps = CapsOptions{Bandwidth: strings.TrimSpace(p.Bandwidth), MaxSessions: p.MaxSessions,
		MonthlyQuota: strings.TrimSpace(p.MonthlyQuota), Allow: p.Allow}
	bad := map[string]string{}
	if _, err := ParseBandwidth(o.Serve.Caps.Bandwidth); err != nil {
		bad["bandwidth"] = err.Error()
	}
	if _, err := ParseSize(o.Serve.Caps.MonthlyQuota); err != nil {
		bad["monthly_quota"] = err.Error()
	}
	if len(bad) > 0 {
		return o, tequilapi.FieldErrors(bad)
	}
	if _, err := o.Serve.Caps.Caps(); err != nil {
		return o, tequilapi.FieldError("allow", err.Error())
	}
	return o, nil
}

// optionsDTO is how ServiceOptions look in the start form.
func optionsDTO(o ServiceOptions) tequilapi.ProviderOptionsDTO {
	exit := o.Serve.ExitMode
	if exit == "" {
		exit = tequilapi.ExitUserspace
	}
	allow := o.Serve.Caps.Allow
	if allow == nil {
		allow = []string{}
	}
	return tequilapi.ProviderOptionsDTO{ExitMode: exit, PricePerHour: o.Serve.PriceHour, PricePerGiB: o.Serve.PriceGiB,
		Bandwidth: o.Serve.Caps.Bandwidth, MaxSessions: o.Serve.Caps.MaxSessions, MonthlyQuota: o.Serve.Caps.MonthlyQuota, Allow: allow,
		Country: strings.ToUpper(o.Location.Country)}
}

// ServiceOptions implements tequilapi.ServiceOptionsService.
func (d daemonServiceStarter) ServiceOptions(ctx context.Context) (tequilapi.ServiceOptionsDTO, error) {
	_, found, err := loadProviderState(ctx, d.n.DB)
	if err != nil {
		return tequilapi.ServiceOptionsDTO{}, err
	}
	last := d.n.lastProvider()
	out := tequilapi.ServiceOptionsDTO{State: tequilapi.ProviderNone, Restartable: last != nil,
		Options: optionsDTO(d.n.Config.Provider.Defaults)}
	if c := d.n.Config.Provider.Location.Override.Country; c != "" {
		out.Options.Country = c // --location.country of --provider.serve
	}
	switch {
	case d.svc.Serving():
		out.State = tequilapi.ProviderOn
	case found || last != nil:
		out.State = tequilapi.ProviderOff // stopped, or its start failed
	}
	if last != nil && last.req != nil && last.req.Provider != nil {
		out.Options = *last.req.Provider
		if out.Options.Allow == nil {
			out.Options.Allow = []string{}
		}
	}
	return out, nil
}

// Capabilities answers GET /capabilities from the daemon's privileges.
type Capabilities struct{}

// Capabilities implements tequilapi.CapabilitiesService.
func (Capabilities) Capabilities(context.Context) tequilapi.CapabilitiesDTO {
	c := netAdminCapability(kernel.CheckNetAdmin, exec.LookPath)
	return tequilapi.CapabilitiesDTO{TunMode: c, KernelExit: c}
}

// netAdminCapability says whether the process can set up kernel
// tunnels: CAP_NET_ADMIN (check) and the ip and nft commands (look).
func netAdminCapability(check func() error, look func(string) (string, error)) tequilapi.CapabilityDTO {
	var why []string
	if err := check(); err != nil {
		why = append(why, err.Error())
	}
	for _, cmd := range []string{"ip", "nft"} {
		if _, err := look(cmd); err != nil {
			why = append(why, "the "+cmd+" command is missing ("+err.Error()+")")
		}
	}
	if len(why) > 0 {
		return tequilapi.CapabilityDTO{Reason: strings.Join(why, "; ")}
	}
	return tequilapi.CapabilityDTO{Available: true}
}

// rememberingPricer is the daemon's PUT /provider/price: it announces the
// new price and, for a provider started with chosen options (PUT
// /service {"provider": ...}), writes it into the remembered request, so
// that a restart announces it too. The --provider.serve provider's price
// is its flag's after a restart.
type rememberingPricer struct{ n *DaemonNode }

// SetPrice implements tequilapi.PriceService.
func (r rememberingPricer) SetPrice(ctx context.Context, price market.Price) (market.Price, error) {
	got, err := r.n.providerSvc.SetPrice(ctx, price)
	if err != nil {
		return got, err
	}
	if err := r.n.rememberPrice(ctx, got); err != nil {
		return got, fmt.Errorf("the new price is announced, but a daemon restart would announce the old one: %w", err)
	}
	return got, nil
}

// rememberPrice writes price into the remembered options of the running
// provider when it was started with chosen options.
func (n *DaemonNode) rememberPrice(ctx context.Context, price market.Price) error {
	n.lastProvMu.Lock()
	defer n.lastProvMu.Unlock()
	last := n.lastProv
	if last == nil || last.req == nil || last.req.Provider == nil {
		return nil
	}
	req := *last.req
	o := *req.Provider
	o.PricePerHour, o.PricePerGiB = price.PerHour.MYST(), price.PerGiB.MYST()
	req.Provider = &o
	if err := saveProviderState(ctx, n.DB, providerState{State: tequilapi.ProviderOn, Request: &req}); err != nil {
		return err
	}
	last.req, last.cfg.Price = &req, price
	return nil
}
