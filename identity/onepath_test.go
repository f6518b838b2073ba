package identity

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/openmyst/openmyst/internal/testenv"
)

// TestOneSignatureVerifier: no production code outside this package
// recovers or verifies secp256k1 signatures itself, so every signed object
// goes through Recover and accepts exactly what the contracts accept; and
// none imports the test-only malleation helpers of identity/sigtest.
func TestOneSignatureVerifier(t *testing.T) {
	recovery := regexp.MustCompile(`"github.com/openmyst/openmyst/identity/sigtest"|crypto\.(SigToPub|Ecrecover|VerifySignature|ValidateSignatureValues)\b|secp256k1\.(RecoverPubkey|VerifySignature)\b|ecdsa\.Verify(ASN1)?\b`)
	root := ".."
	var offenders []string
	for _, path := range testenv.GoFiles(t, root, "bindings", "identity") {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if loc := recovery.FindIndex(src); loc != nil {
			offenders = append(offenders, path+": "+string(src[loc[0]:loc[1]]))
		}
	}
	if len(offenders) > 0 {
		t.Fatalf("signature recovery outside identity.Recover, or a production import of identity/sigtest:\n%s", strings.Join(offenders, "\n"))
	}
}
