package chain

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
)

func sampleDeployment() Deployment {
	return Deployment{
		ChainID: 1337, Token: common.HexToAddress("0x01"), Registry: common.HexToAddress("0x02"),
		ChannelImplementation: common.HexToAddress("0x03"), HermesImplementation: common.HexToAddress("0x04"),
		Hermes: common.HexToAddress("0x05"), HermesOperator: common.HexToAddress("0x06"), Faucet: true, DeployBlock: 2,
	}
}

func TestDeploymentRoundTrip(t *testing.T) {
	d := sampleDeployment()
	path := filepath.Join(t.TempDir(), "chain", "deployment.json")
	if err := d.Save(path); err != nil {
		t.Fatal(err)
	}
	got, err := LoadDeployment(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != d {
		t.Fatalf("round trip %+v, want %+v", got, d)
	}
}

func TestDecodeDeploymentRejects(t *testing.T) {
	good := `{"chainId":1337,"token":"0x0000000000000000000000000000000000000001","registry":"0x0000000000000000000000000000000000000002","channelImplementation":"0x0000000000000000000000000000000000000003","hermesImplementation":"0x0000000000000000000000000000000000000004","hermes":"0x0000000000000000000000000000000000000005","hermesOperator":"0x0000000000000000000000000000000000000006","faucet":true,"deployBlock":2}`
	if _, err := DecodeDeployment([]byte(good)); err != nil {
		t.Fatalf("good deployment: %v", err)
	}
	for name, bad := range map[string]string{
		"unknown field":   strings.Replace(good, `"faucet"`, `"extra":1,"faucet"`, 1),
		"missing field":   strings.Replace(good, `"deployBlock":2`, `"faucet2":true`, 1),
		"missing hermes":  strings.Replace(good, `"hermes":"0x0000000000000000000000000000000000000005",`, ``, 1),
		"short address":   strings.Replace(good, `0x0000000000000000000000000000000000000001`, `0x01`, 1),
		"zero registry":   strings.Replace(good, `0x0000000000000000000000000000000000000002`, `0x0000000000000000000000000000000000000000`, 1),
		"zero chain":      strings.Replace(good, `"chainId":1337`, `"chainId":0`, 1),
		"negative chain":  strings.Replace(good, `"chainId":1337`, `"chainId":-1`, 1),
		"trailing data":   good + `{}`,
		"hermes half set": strings.Replace(good, `0x0000000000000000000000000000000000000006`, `0x0000000000000000000000000000000000000000`, 1),
		"not json":        `chainId=1`,
	} {
		if _, err := DecodeDeployment([]byte(bad)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzDecodeDeployment(f *testing.F) {
	f.Add([]byte(`{"chainId":1}`))
	f.Add([]byte(`{"chainId":1337,"token":"0x0000000000000000000000000000000000000001","registry":"0x0000000000000000000000000000000000000002","channelImplementation":"0x0000000000000000000000000000000000000003","hermesImplementation":"0x0000000000000000000000000000000000000004","hermes":"0x0000000000000000000000000000000000000000","hermesOperator":"0x0000000000000000000000000000000000000000","faucet":false,"deployBlock":0}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := DecodeDeployment(data)
		if err != nil {
			return
		}
		if verr := d.Validate(); verr != nil {
			t.Fatalf("decoded an invalid deployment: %v", verr)
		}
	})
}

func TestDecodeRevert(t *testing.T) {
	// NothingToSettle(uint256,uint256) with (1, 2).
	sel := contractSelector(t, "NothingToSettle")
	data := append(sel[:], common.LeftPadBytes([]byte{1}, 32)...)
	data = append(data, common.LeftPadBytes([]byte{2}, 32)...)
	re := DecodeRevert("settle", data)
	if !errors.Is(re, ErrNothingToSettle) || re.Name != "NothingToSettle" || !strings.Contains(re.Error(), "amount=1, settled=2") {
		t.Fatalf("decoded %v", re)
	}
	// Truncated arguments, unknown selectors and empty data stay generic.
	for _, d := range [][]byte{sel[:], {0xde, 0xad, 0xbe, 0xef}, nil} {
		if re := DecodeRevert("x", d); !errors.Is(re, ErrReverted) {
			t.Fatalf("data %x decoded as %v", d, re)
		}
	}
	// Error(string).
	msg, _ := hex.DecodeString("08c379a0" + "0000000000000000000000000000000000000000000000000000000000000020" + "0000000000000000000000000000000000000000000000000000000000000003" + "6f6f700000000000000000000000000000000000000000000000000000000000")
	if re := DecodeRevert("x", msg); re.Name != "Error" || !strings.Contains(re.Error(), "oop") {
		t.Fatalf("string revert %v", re)
	}
}

func contractSelector(t *testing.T, name string) [4]byte {
	t.Helper()
	for id, e := range contractErrors {
		if e.Name == name {
			return id
		}
	}
	t.Fatalf("no error %s", name)
	return [4]byte{}
}

func FuzzDecodeRevert(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0x08, 0xc3, 0x79, 0xa0, 1, 2})
	for id := range contractErrors {
		f.Add(append(id[:], make([]byte, 64)...))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		re := DecodeRevert("fuzz", data)
		if re.Unwrap() == nil || re.Error() == "" {
			t.Fatal("revert without sentinel or text")
		}
	})
}

const sampleProgress = `{"chainId":1337,"deployer":"0x0000000000000000000000000000000000000009",
"params":{"faucet":false,"supply":"1000","holder":"0x0000000000000000000000000000000000000009","minHermesStake":"10","exitTimelockSeconds":3600,"feeNoticeDelaySeconds":3600},
"steps":[{"name":"token","nonce":3,"address":"0x0000000000000000000000000000000000000001","tx":"0x0000000000000000000000000000000000000000000000000000000000000001","sentAtBlock":5,"mined":true,"block":6},
{"name":"registry","nonce":4,"address":"0x0000000000000000000000000000000000000002","tx":"0x0000000000000000000000000000000000000000000000000000000000000002","sentAtBlock":6,"mined":false,"block":0}]}`

// TestDecodeDeployProgress: a progress file round-trips, and one that
// could mislead a rerun (steps out of order, a step after an unmined one,
// a bad amount, unknown fields) is refused.
func TestDecodeDeployProgress(t *testing.T) {
	p, err := DecodeDeployProgress([]byte(sampleProgress))
	if err != nil || len(p.Steps) != 2 || p.Done() || p.Steps[1].Nonce != 4 {
		t.Fatalf("decoded %+v, %v", p, err)
	}
	path := filepath.Join(t.TempDir(), "progress")
	if err := p.save(path); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := LoadDeployProgress(path); err != nil || !ok || got.Params != p.Params || len(got.Steps) != 2 || got.Steps[0] != p.Steps[0] {
		t.Fatalf("round trip %+v, %v, %v", got, ok, err)
	}
	if _, ok, err := LoadDeployProgress(path + ".missing"); ok || err != nil {
		t.Fatalf("missing file: %v, %v", ok, err)
	}
	for name, bad := range map[string]string{
		"order":         strings.Replace(strings.Replace(sampleProgress, `"token"`, `"x"`, 1), `"registry"`, `"token"`, 1),
		"after unmined": strings.Replace(sampleProgress, `"mined":true`, `"mined":false`, 1),
		"amount":        strings.Replace(sampleProgress, `"supply":"1000"`, `"supply":"-1"`, 1),
		"unknown field": strings.Replace(sampleProgress, `"chainId"`, `"x":1,"chainId"`, 1),
		"no deployer":   strings.Replace(sampleProgress, `"deployer":"0x0000000000000000000000000000000000000009"`, `"deployer":"0x0000000000000000000000000000000000000000"`, 1),
	} {
		if _, err := DecodeDeployProgress([]byte(bad)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzDecodeDeployProgress(f *testing.F) {
	f.Add([]byte(sampleProgress))
	f.Add([]byte(`{"chainId":1,"deployer":"0x0000000000000000000000000000000000000001","params":{"supply":"0","minHermesStake":"0"},"steps":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := DecodeDeployProgress(data)
		if err != nil {
			return
		}
		// What decodes encodes and decodes to the same.
		again, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		q, err := DecodeDeployProgress(again)
		if err != nil || q.Params != p.Params || len(q.Steps) != len(p.Steps) || q.Done() != p.Done() {
			t.Fatalf("re-decoded %+v (%v), want %+v", q, err, p)
		}
	})
}
