package tap

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
)

// Gate key files are PEM, as OpenSSL writes Ed25519 keys
// ("openssl genpkey -algorithm ed25519"); the gate signs its uploads with
// the private key (SignRequest), the back office registers the public one:
//
//	gate.key  "PRIVATE KEY" block, PKCS #8 (RFC 8410), mode 0600, on the gate
//	gate.pub  "PUBLIC KEY" block, PKIX SubjectPublicKeyInfo (RFC 8410)

// ErrGateKey: a gate key file is not what it should be.
var ErrGateKey = errors.New("tap: invalid gate key")

// GenerateGateKey returns a new Ed25519 gate key drawn from random (nil:
// crypto/rand).
func GenerateGateKey(random io.Reader) (ed25519.PrivateKey, error) {
	_, key, err := ed25519.GenerateKey(random)
	if err != nil {
		return nil, fmt.Errorf("tap: generate gate key: %w", err)
	}
	return key, nil
}

// MarshalGateKey encodes key as a PEM "PRIVATE KEY" block (PKCS #8).
func MarshalGateKey(key ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrGateKey, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// MarshalGatePublicKey encodes pub as a PEM "PUBLIC KEY" block (PKIX).
func MarshalGatePublicKey(pub ed25519.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrGateKey, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// ParseGateKey decodes a PEM PKCS #8 Ed25519 private key.
func ParseGateKey(b []byte) (ed25519.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%w: want a PEM \"PRIVATE KEY\" block", ErrGateKey)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: not PKCS #8", ErrGateKey)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: not an Ed25519 key", ErrGateKey)
	}
	return ek, nil
}

// ParseGatePublicKey decodes a PEM PKIX Ed25519 public key.
func ParseGatePublicKey(b []byte) (ed25519.PublicKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("%w: want a PEM \"PUBLIC KEY\" block", ErrGateKey)
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: not PKIX", ErrGateKey)
	}
	ek, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: not an Ed25519 key", ErrGateKey)
	}
	return ek, nil
}
