package validator

import (
	"github.com/faregate/faregate/emv"
	"github.com/faregate/faregate/oda"
)

// Config is everything a gate is built from: what it trusts for offline
// data authentication, its terminal configuration and its acceptance
// rules. `faregate tap`, `faregate demo` and the gate daemon build their
// gates from one, so the chain verifier → kernel → gate is written once.
type Config struct {
	// Keys is the CA public key list. Required.
	Keys *oda.KeyStore
	// Revoked lists revoked issuer certificates.
	Revoked []oda.Revocation
	// TestKeys accepts CA keys marked test: certification, the software
	// cards and the demo. Never on a gate in service.
	TestKeys bool
	// Terminal is the kernel's terminal configuration (amount, currency,
	// clock, time zone, transcript recording …); its Authenticator is
	// replaced by the verifier built from Keys.
	Terminal emv.Config
	// Rules decide each tap.
	Rules Rules
}

// NewVerifier returns the verifier of the configuration's trust.
func (c *Config) NewVerifier() (*oda.Verifier, error) {
	if c.Keys == nil {
		return nil, errNoKeys
	}
	return oda.NewVerifier(c.Keys, oda.Options{TestMode: c.TestKeys, Revoked: c.Revoked}), nil
}

// NewKernel returns the gate's kernel: the terminal configuration with the
// configuration's verifier as its Authenticator.
func (c *Config) NewKernel() (*emv.Kernel, error) {
	v, err := c.NewVerifier()
	if err != nil {
		return nil, err
	}
	term := c.Terminal
	term.Authenticator = v
	return emv.NewKernel(term)
}

// NewGateFromConfig builds a gate: verifier, kernel, rules.
func NewGateFromConfig(c Config) (*Gate, error) {
	k, err := c.NewKernel()
	if err != nil {
		return nil, err
	}
	return NewGate(k, c.Rules)
}
