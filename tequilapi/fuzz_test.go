package tequilapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"testing"

	"github.com/openmyst/openmyst/market"

	"github.com/openmyst/openmyst/money"
)

// FuzzDecodeJSON feeds arbitrary bodies to the strict decoder: it must never
// panic, must fail only with a 400 APIError, and whatever it accepts must
// have every required field and survive a re-encode/decode round trip.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{
		`{"passphrase":"x"}`, `{"passphrase":"x","set_default":true}`, `{"message":"hi"}`,
		`{"username":"myst","password":"p"}`, `{"current_password":"a","new_password":"bbbbbbbbbbbb"}`,
		`{`, `}`, `null`, `[]`, `""`, `{"passphrase":null}`, `{"passphrase":"x"}{}`, `{"a":1}`,
		"{\"passphrase\":\"\\ud800\"}", `{"passphrase":"x","passphrase":"y"}`, `{"PASSPHRASE":"x"}`,
		`{"amount":"1.5"}`, `{"amount":"1.5","from_transactor":true}`, `{"amount":"-1"}`, `{"amount":"0.0000000000000000001"}`,
		`{"address":"0x00000000000000000000000000000000000000bb"}`, `{"beneficiary":"0x00000000000000000000000000000000000000bb","fee":"0"}`,
		`{"per_hour":"0.1","per_gib":"0.5"}`, `{"per_hour":"-1","per_gib":"0"}`, `{"per_hour":"1e3","per_gib":"0"}`, `{"per_hour":"0.1"}`,
		`{"identity":"0x00000000000000000000000000000000000000bb","options":{"Serve":{}}}`, `{"options":[]}`, `{"options":"x"}`,
		`{"provider":{"exit_mode":"userspace","price_per_hour":"0.1","price_per_gib":"0.5","allow":[]}}`,
		`{"provider":{"exit_mode":"","price_per_hour":"1","price_per_gib":"2","bandwidth":"10Mbit","max_sessions":3,"monthly_quota":"1GiB","allow":["0x00000000000000000000000000000000000000bb"]}}`,
		`{"provider":{"exit_mode":"kernel","price_per_hour":"x","price_per_gib":"-1","max_sessions":-1,"allow":["0x0"]}}`,
		`{"provider":{"price_per_hour":"1","price_per_gib":"1"},"options":{}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		check(t, body, &CreateIdentityRequest{})
		check(t, body, &SignRequest{})
		check(t, body, &LoginRequest{})
		check(t, body, &ChangePasswordRequest{})
		check(t, body, &UnlockRequest{})
		check(t, body, &TopupRequest{})
		check(t, body, &BeneficiaryRequest{})
		check(t, body, &RegisterRequest{})
		var sr ServiceStartRequest
		accepted := check(t, body, &sr)
		if accepted && len(sr.Options) > 0 && sr.Options[0] != '{' {
			t.Fatalf("accepted service start body %q whose options are not an object", body)
		}
		if accepted && sr.Provider != nil {
			if len(sr.Options) > 0 {
				t.Fatalf("accepted service start body %q with both options and provider", body)
			}
			if _, err := money.ParseMYSTAmount(sr.Provider.PricePerHour); err != nil {
				t.Fatalf("accepted provider options %q whose price per hour does not parse: %v", body, err)
			}
			if len(sr.Provider.Allow) > market.MaxAllow || sr.Provider.MaxSessions < 0 {
				t.Fatalf("accepted provider options %q out of bounds", body)
			}
		}
		var pr PriceRequest
		if check(t, body, &pr) {
			if _, err := pr.Price(); err != nil {
				t.Fatalf("accepted price body %q that does not parse: %v", body, err)
			}
		}
	})
}

// check decodes body into v and checks the decoder's contract; it
// reports whether the body was accepted.
func check[T any](t *testing.T, body []byte, v *T) bool {
	err := DecodeBytes(body, v)
	if err != nil {
		var apiErr *APIError
		if !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest || apiErr.Body.Code == "" || apiErr.Body.Message == "" {
			t.Fatalf("body %q: error %v is not a 400 APIError", body, err)
		}
		return false
	}
	var present map[string]json.RawMessage
	if json.Unmarshal(body, &present) != nil {
		t.Fatalf("accepted non-object body %q", body)
	}
	for _, f := range jsonFields(reflect.TypeFor[T]()) {
		if _, ok := present[f.name]; f.required && !ok {
			t.Fatalf("accepted body %q without required field %s", body, f.name)
		}
	}
	again, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	w := new(T)
	if err := DecodeBytes(again, w); err != nil {
		t.Fatalf("re-encoded %q rejected: %v", again, err)
	}
	if !reflect.DeepEqual(v, w) {
		t.Fatalf("round trip changed %+v to %+v", v, w)
	}
	return true
}
