package market

import (
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/money"
)

// SortKey is a proposal order. Every order ends with the provider id, so
// equal keys still give one stable order.
type SortKey string

// The supported orders.
const (
	// SortPrice orders by price per GiB, then per hour (cheapest first).
	SortPrice SortKey = "price"
	// SortPriceHour orders by price per hour, then per GiB.
	SortPriceHour SortKey = "price-hour"
	// SortProvider orders by provider id only.
	SortProvider SortKey = "provider"
	// SortQuality orders by the node's quality score of each provider
	// (best first; package quality), then by price. Sort cannot see
	// scores and keeps the given order: the proposal cache (discovery)
	// delivers proposals in quality order, and Pick keeps it.
	SortQuality SortKey = "quality"
)

// Filter selects proposals. Zero-valued fields match everything.
type Filter struct {
	// ServiceType, if set, must equal the proposal's.
	ServiceType ServiceType
	// Country, if set, must equal the location's country.
	Country string
	// IPType, if set, must equal the location's ip type.
	IPType IPType
	// MaxPricePerHour, if set, is the highest acceptable price per hour.
	MaxPricePerHour money.Amount
	// MaxPricePerGiB, if set, is the highest acceptable price per GiB.
	MaxPricePerGiB money.Amount
	// ProviderID, if non-zero, must equal the proposal's provider.
	ProviderID common.Address
	// Hermes, if non-zero, must be among the proposal's accepted hermes.
	Hermes common.Address
	// Sort is the output order; empty means SortPrice.
	Sort SortKey
}

// Match reports whether p passes the filter. Withdrawn proposals never
// match.
func (f Filter) Match(p *Proposal) bool {
	if p.Withdrawn {
		return false
	}
	if f.ServiceType != "" && p.ServiceType != f.ServiceType {
		return false
	}
	if f.Country != "" && p.Location.Country != f.Country {
		return false
	}
	if f.IPType != "" && p.Location.IPType != f.IPType {
		return false
	}
	if f.MaxPricePerHour.IsSet() && p.Price.PerHour.Cmp(f.MaxPricePerHour) > 0 {
		return false
	}
	if f.MaxPricePerGiB.IsSet() && p.Price.PerGiB.Cmp(f.MaxPricePerGiB) > 0 {
		return false
	}
	if f.ProviderID != (common.Address{}) && p.ProviderID != f.ProviderID {
		return false
	}
	if f.Hermes != (common.Address{}) {
		found := false
		for _, h := range p.Hermes {
			if h == f.Hermes {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// Apply returns the proposals of ps that match f, in f's order. ps is not
// modified.
func (f Filter) Apply(ps []Proposal) []Proposal {
	out := make([]Proposal, 0, len(ps))
	for i := range ps {
		if f.Match(&ps[i]) {
			out = append(out, ps[i])
		}
	}
	Sort(out, f.Sort)
	return out
}

// Sort orders ps in place by key (SortPrice if empty); ties are broken by
// provider id, so the order is total and stable across runs. SortQuality
// leaves ps as it is (see SortQuality).
func Sort(ps []Proposal, key SortKey) {
	if key == SortQuality {
		return
	}
	less := func(a, b *Proposal) int {
		switch key {
		case SortProvider:
			return 0
		case SortPriceHour:
			if c := a.Price.PerHour.Cmp(b.Price.PerHour); c != 0 {
				return c
			}
			return a.Price.PerGiB.Cmp(b.Price.PerGiB)
		default:
			if c := a.Price.PerGiB.Cmp(b.Price.PerGiB); c != 0 {
				return c
			}
			return a.Price.PerHour.Cmp(b.Price.PerHour)
		}
	}
	sort.SliceStable(ps, func(i, j int) bool {
		if c := less(&ps[i], &ps[j]); c != 0 {
			return c < 0
		}
		return strings.Compare(ps[i].ProviderID.Hex(), ps[j].ProviderID.Hex()) < 0
	})
}

// Query parameter names understood by ParseFilter (Tequilapi GET /proposals).
const (
	QueryServiceType = "service_type"
	QueryCountry     = "country"
	QueryIPType      = "ip_type"
	QueryMaxPriceHr  = "max_price_hour" // MYST, decimal ("0.05")
	QueryMaxPriceGiB = "max_price_gib"  // MYST, decimal ("0.2")
	QueryProviderID  = "provider_id"
	QueryHermesID    = "hermes_id"
	QuerySort        = "sort"
)

// FilterOptions are a filter as people give it (command flags, request
// bodies): ParseFilter's parameters by field; empty fields are not set.
type FilterOptions struct {
	ProviderID, Country, IPType, MaxPriceGiB, MaxPriceHour, HermesID, Sort string
}

// Filter is ParseFilter of the options' parameters.
func (o FilterOptions) Filter() (Filter, error) {
	q := url.Values{}
	for k, v := range map[string]string{QueryProviderID: o.ProviderID, QueryCountry: o.Country, QueryIPType: o.IPType,
		QueryMaxPriceGiB: o.MaxPriceGiB, QueryMaxPriceHr: o.MaxPriceHour, QueryHermesID: o.HermesID, QuerySort: o.Sort} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return ParseFilter(q)
}

// ParseFilter builds a Filter from URL query parameters (names above).
// Unknown or repeated parameters and invalid values are rejected, so a typo
// never silently widens a filter. Prices are in MYST, not wei.
func ParseFilter(q url.Values) (Filter, error) {
	var f Filter
	for k, vs := range q {
		if len(vs) != 1 {
			return Filter{}, fmt.Errorf("market: filter: parameter %q given %d times", k, len(vs))
		}
		v := vs[0]
		var err error
		switch k {
		case QueryServiceType:
			f.ServiceType, err = ParseServiceType(v)
		case QueryCountry:
			v = strings.ToUpper(v)
			if !ValidCountry(v) {
				err = fmt.Errorf("country %q is not an ISO 3166-1 alpha-2 code", v)
			}
			f.Country = v
		case QueryIPType:
			f.IPType, err = ParseIPType(v)
		case QueryMaxPriceHr, QueryMaxPriceGiB:
			wei, perr := money.ParseMYST(v)
			if perr != nil {
				err = perr
				break
			}
			if k == QueryMaxPriceHr {
				f.MaxPricePerHour = money.MustAmount(wei)
			} else {
				f.MaxPricePerGiB = money.MustAmount(wei)
			}
		case QueryProviderID, QueryHermesID:
			if !common.IsHexAddress(v) || !strings.HasPrefix(v, "0x") {
				err = fmt.Errorf("%q is not a 0x address", v)
				break
			}
			if k == QueryProviderID {
				f.ProviderID = common.HexToAddress(v)
			} else {
				f.Hermes = common.HexToAddress(v)
			}
		case QuerySort:
			switch s := SortKey(v); s {
			case SortPrice, SortPriceHour, SortProvider, SortQuality:
				f.Sort = s
			default:
				err = fmt.Errorf("sort %q: want price, price-hour, provider or quality", v)
			}
		default:
			err = fmt.Errorf("unknown parameter")
		}
		if err != nil {
			return Filter{}, fmt.Errorf("market: filter: %s: %w", k, err)
		}
	}
	return f, nil
}

// Values is the inverse of ParseFilter.
func (f Filter) Values() url.Values {
	q := url.Values{}
	if f.ServiceType != "" {
		q.Set(QueryServiceType, string(f.ServiceType))
	}
	if f.Country != "" {
		q.Set(QueryCountry, f.Country)
	}
	if f.IPType != "" {
		q.Set(QueryIPType, string(f.IPType))
	}
	if f.MaxPricePerHour.IsSet() {
		q.Set(QueryMaxPriceHr, f.MaxPricePerHour.MYST())
	}
	if f.MaxPricePerGiB.IsSet() {
		q.Set(QueryMaxPriceGiB, f.MaxPricePerGiB.MYST())
	}
	if f.ProviderID != (common.Address{}) {
		q.Set(QueryProviderID, f.ProviderID.Hex())
	}
	if f.Hermes != (common.Address{}) {
		q.Set(QueryHermesID, f.Hermes.Hex())
	}
	if f.Sort != "" {
		q.Set(QuerySort, string(f.Sort))
	}
	return q
}

// MarshalList is the stable JSON form of a proposal list (GET /proposals,
// `myst proposals --json`): a JSON array of proposals in canonical field
// order, indented by two spaces, "[]" when empty. Sort ps first.
func MarshalList(ps []Proposal) ([]byte, error) {
	raws := make([]json.RawMessage, 0, len(ps))
	for i := range ps {
		b, err := ps[i].CanonicalJSON()
		if err != nil {
			return nil, err
		}
		raws = append(raws, b)
	}
	out, err := json.MarshalIndent(raws, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("market: encode proposal list: %w", err)
	}
	return out, nil
}
