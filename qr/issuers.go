package qr

import (
	"crypto/ed25519"
	"fmt"
	"time"
)

// Issuers is the set of back-office public keys a verifier trusts, by key
// id. During a rotation it holds the outgoing and the incoming key; a key
// leaves it once no credential it signed is still valid.
type Issuers struct {
	keys map[KeyID]ed25519.PublicKey
	exp  map[KeyID]*pubKey // the same keys expanded for verification
}

// NewIssuers returns the set of pubs. Two keys with the same KeyID are an
// error (one in 65 536 per pair of keys: make another key), and so is a
// key that is not a point on the curve (it could verify nothing).
func NewIssuers(pubs ...ed25519.PublicKey) (*Issuers, error) {
	s := &Issuers{keys: make(map[KeyID]ed25519.PublicKey, len(pubs)), exp: make(map[KeyID]*pubKey, len(pubs))}
	for _, p := range pubs {
		exp := expand(p)
		if exp == nil {
			return nil, fmt.Errorf("qr: issuer key is not an Ed25519 public key")
		}
		id := KeyIDOf(p)
		if old, ok := s.keys[id]; ok {
			if old.Equal(p) {
				continue
			}
			return nil, fmt.Errorf("qr: two issuer keys share key id %s; generate another key", id)
		}
		s.keys[id] = append(ed25519.PublicKey(nil), p...)
		s.exp[id] = exp
	}
	return s, nil
}

// Lookup returns the key with id.
func (s *Issuers) Lookup(id KeyID) (ed25519.PublicKey, bool) {
	if s == nil {
		return nil, false
	}
	k, ok := s.keys[id]
	return k, ok
}

// Len returns the number of keys.
func (s *Issuers) Len() int {
	if s == nil {
		return 0
	}
	return len(s.keys)
}

// checkIssuer checks what gate and back office check first: the issuer
// key id, then the issuer's signature over the credential.
func checkIssuer(issuers *Issuers, c *Code) error {
	var k *pubKey
	ok := issuers != nil
	if ok {
		k, ok = issuers.exp[c.Credential.KeyID]
	}
	if !ok {
		return refuse(ReasonUnknownKeyID, "key id %s", c.Credential.KeyID)
	}
	if !k.verify(issuerDomain, c.raw[:credSigned], c.raw[credSigned:CredentialSize]) {
		return refuse(ReasonBadIssuerSignature, "")
	}
	return nil
}

// checkValidity checks the credential's validity period at time at.
func checkValidity(c *Code, at time.Time) error {
	cr := &c.Credential
	switch {
	case at.Before(cr.NotBefore):
		return refuse(ReasonNotYetValid, "valid from %s", cr.NotBefore.Format(time.RFC3339))
	case at.After(cr.NotAfter.Add(time.Second - 1)):
		return refuse(ReasonExpired, "expired %s", cr.NotAfter.Format(time.RFC3339))
	}
	return nil
}

// checkWindow checks that the code's time is within ±window of at.
func checkWindow(c *Code, at time.Time, window time.Duration) error {
	skew := c.Time.Sub(at)
	if skew > window || skew < -window {
		return refuse(ReasonClockSkew, "code time is %s from the verifier's clock, window ±%s", skew.Round(time.Second), window)
	}
	return nil
}
