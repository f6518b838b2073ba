package node

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/spf13/pflag"

	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/session/provider"
	"github.com/openmyst/openmyst/storage"
	"github.com/openmyst/openmyst/tequilapi"
)

// ProviderCaps are a provider operator's limits on what it serves
// (docs/node.md#operator-caps).
type ProviderCaps struct {
	// SessionBandwidth caps each session's exit traffic in bytes per
	// second in each direction (0: unlimited); it is announced in the
	// proposal's caps.
	SessionBandwidth uint64
	// MaxSessions caps concurrent sessions (0: the session manager's
	// default, 1000).
	MaxSessions int
	// MonthlyQuota caps the traffic of all sessions per calendar month
	// (UTC) in bytes, counted durably in the node database (0: unlimited,
	// still counted).
	MonthlyQuota uint64
	// Allow, when set, serves only these consumer identities (the
	// proposal's access policy is then an allow-list).
	Allow []common.Address
}

// Access is the proposal access policy of the caps.
func (c ProviderCaps) Access() market.AccessPolicy {
	if len(c.Allow) == 0 {
		return market.AccessPolicy{Kind: market.AccessPublic}
	}
	return market.AccessPolicy{Kind: market.AccessAllowList, Allow: c.Allow}
}

// Announced are the caps the proposal carries (nil without a bandwidth
// cap: the proposal stays format version 1).
func (c ProviderCaps) Announced() *market.Caps {
	if c.SessionBandwidth == 0 {
		return nil
	}
	return &market.Caps{Bandwidth: c.SessionBandwidth}
}

// CapsOptions are the caps as an operator gives them: `myst service` and
// `myst daemon --provider.serve` declare the same flags (Register).
type CapsOptions struct {
	// Bandwidth is per session and direction, a rate such as "10Mbit" or
	// "2MiB" (per second; see ParseBandwidth).
	Bandwidth string
	// MaxSessions caps concurrent sessions (0: 1000).
	MaxSessions int
	// MonthlyQuota is a size such as "500GiB" (see ParseSize; "" or "0":
	// unlimited).
	MonthlyQuota string
	// Allow lists the only consumer identities served (empty: public).
	Allow []string
}

// Register declares --provider.bandwidth, --provider.max-sessions,
// --provider.monthly-quota and --provider.allow on fs.
func (o *CapsOptions) Register(fs *pflag.FlagSet) {
	fs.StringVar(&o.Bandwidth, "provider.bandwidth", "", "per-session bandwidth cap in each direction, e.g. 10Mbit or 2MiB (per second; default unlimited; announced in the proposal)")
	fs.IntVar(&o.MaxSessions, "provider.max-sessions", 0, "most concurrent sessions (default 1000); more are refused with capacity")
	fs.StringVar(&o.MonthlyQuota, "provider.monthly-quota", "", "traffic quota of all sessions per calendar month (UTC), e.g. 500GiB (default unlimited); sessions are refused and ended with quota_exhausted once it is used up")
	fs.StringSliceVar(&o.Allow, "provider.allow", nil, "serve only these consumer identities (0x..., comma separated; default: public)")
}

// Caps checks the options and returns the caps they describe.
func (o CapsOptions) Caps() (ProviderCaps, error) {
	var c ProviderCaps
	var err error
	if c.SessionBandwidth, err = ParseBandwidth(o.Bandwidth); err != nil {
		return c, fmt.Errorf("--provider.bandwidth: %w", err)
	}
	if c.MonthlyQuota, err = ParseSize(o.MonthlyQuota); err != nil {
		return c, fmt.Errorf("--provider.monthly-quota: %w", err)
	}
	if o.MaxSessions < 0 {
		return c, fmt.Errorf("--provider.max-sessions: %d is negative", o.MaxSessions)
	}
	c.MaxSessions = o.MaxSessions
	if len(o.Allow) > 0 {
		if c.Allow, err = parseAddrs(o.Allow); err != nil {
			return c, fmt.Errorf("--provider.allow: %w", err)
		}
		if err := c.Access().Validate(); err != nil {
			return c, fmt.Errorf("--provider.allow: %w", err)
		}
	}
	return c, nil
}

// sizeUnits are the byte multipliers ParseSize and ParseBandwidth accept
// (lower case); bit units count bits.
var sizeUnits = map[string]float64{
	"": 1, "b": 1,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
	"kbit": 1e3 / 8, "mbit": 1e6 / 8, "gbit": 1e9 / 8,
}

// ParseSize parses a byte count: a non-negative decimal number with an
// optional unit B, kB/MB/GB/TB (powers of 1000), KiB/MiB/GiB/TiB (powers
// of 1024) or kbit/Mbit/Gbit, case-insensitive ("" is 0).
func ParseSize(s string) (uint64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	if t == "" {
		return 0, nil
	}
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := t, ""
	if i >= 0 {
		num, unit = t[:i], strings.TrimSpace(t[i:])
	}
	mul, ok := sizeUnits[unit]
	if !ok {
		return 0, fmt.Errorf("size %q: unknown unit %q (want B, kB, MB, GB, TB, KiB, MiB, GiB, TiB, kbit, Mbit or Gbit)", s, unit)
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, fmt.Errorf("size %q: want a non-negative number and a unit", s)
	}
	b := v * mul
	if b >= math.MaxInt64 {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return uint64(b), nil
}

// ParseBandwidth parses a rate in bytes per second: a ParseSize size with
// an optional "/s" or "ps" suffix ("10Mbit", "10Mbps", "2MiB/s"). A
// non-zero rate below 1 KiB/s is refused (a session could not even
// finish its handshakes).
func ParseBandwidth(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	l := strings.ToLower(t)
	switch {
	case strings.HasSuffix(l, "/s"):
		t = t[:len(t)-2]
	case strings.HasSuffix(l, "bps"):
		t = t[:len(t)-2] + "it"
	}
	v, err := ParseSize(t)
	if err != nil {
		return 0, err
	}
	if v != 0 && v < market.MinBandwidthCap {
		return 0, fmt.Errorf("bandwidth %q is below 1 KiB/s", s)
	}
	return v, nil
}

// quotaSetting is the node database setting holding the provider's
// monthly traffic count.
const quotaSetting = "provider.traffic-quota"

// quotaStore keeps the provider's monthly traffic count in the node
// database (provider.QuotaStore).
type quotaStore struct{ db *storage.DB }

// LoadUsage implements provider.QuotaStore.
func (s quotaStore) LoadUsage(ctx context.Context) (provider.QuotaUsage, error) {
	var u provider.QuotaUsage
	b, ok, err := s.db.GetSetting(ctx, quotaSetting)
	if err != nil || !ok {
		return u, err
	}
	if err := json.Unmarshal(b, &u); err != nil {
		return u, fmt.Errorf("node: stored traffic quota: %w", err)
	}
	return u, nil
}

// SaveUsage implements provider.QuotaStore.
func (s quotaStore) SaveUsage(ctx context.Context, u provider.QuotaUsage) error {
	b, err := json.Marshal(u)
	if err != nil {
		return err
	}
	return s.db.PutSetting(ctx, quotaSetting, b)
}

// Caps returns the provider's caps and this month's quota use.
func (p *Provider) Caps() tequilapi.ServiceCapsDTO {
	c := p.cfg.Caps
	maxSessions := c.MaxSessions
	if maxSessions == 0 {
		maxSessions = provider.DefaultMaxSessions
	}
	acc := c.Access()
	allow := make([]string, 0, len(acc.Allow))
	for _, a := range acc.Allow {
		allow = append(allow, a.Hex())
	}
	st := p.Quota.Status()
	return tequilapi.ServiceCapsDTO{
		Provider: p.Address().Hex(), SessionBandwidth: c.SessionBandwidth, MaxSessions: maxSessions, Sessions: len(p.Sessions.Sessions()),
		Access: acc.Kind, Allow: allow,
		Quota: tequilapi.QuotaDTO{Month: st.Month, Limit: st.Limit, Used: st.Used, Resets: st.Resets.Format(time.RFC3339), Exhausted: st.Exhausted},
	}
}

var _ tequilapi.ServiceCaps = (*ProviderService)(nil)

// Caps implements tequilapi.ServiceCaps.
func (s *ProviderService) Caps(context.Context) (tequilapi.ServiceCapsDTO, error) {
	a, err := s.api()
	if err != nil {
		return tequilapi.ServiceCapsDTO{}, err
	}
	return a.Provider.Caps(), nil
}
