package cardsim

import (
	"fmt"
	"io/fs"

	"github.com/faregate/faregate"
	"github.com/faregate/faregate/oda"
)

// TestKeys returns the CA public key list the software cards of
// testdata/cards are certified under (testdata/pki/capk.json). Every key is
// marked test: only a verifier in test mode uses them.
func TestKeys() (*oda.KeyStore, error) {
	b, err := fs.ReadFile(faregate.TestData, "testdata/pki/capk.json")
	if err != nil {
		return nil, fmt.Errorf("cardsim: %w", err)
	}
	return oda.ParseKeyStore(b)
}

// TestRevocations returns the issuer certificates the test gate treats as
// revoked (testdata/pki/revoked.json): the fault-revoked-issuer card's.
func TestRevocations() ([]oda.Revocation, error) {
	b, err := fs.ReadFile(faregate.TestData, "testdata/pki/revoked.json")
	if err != nil {
		return nil, fmt.Errorf("cardsim: %w", err)
	}
	return oda.ParseRevocations(b)
}

// TestVerifier returns a verifier that trusts the software cards: their CA
// keys in test mode, with their revocation list. opts may tune the cache;
// TestMode and Revoked are set here.
func TestVerifier(opts oda.Options) (*oda.Verifier, error) {
	keys, err := TestKeys()
	if err != nil {
		return nil, err
	}
	if opts.Revoked, err = TestRevocations(); err != nil {
		return nil, err
	}
	opts.TestMode = true
	return oda.NewVerifier(keys, opts), nil
}
