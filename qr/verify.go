package qr

import (
	"crypto/ed25519"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// Signatures are made with crypto/ed25519 and verified with
// curve25519-voi, which does the same check about twice as fast (a
// precomputed table per public key, a faster double-scalar
// multiplication). VerifyOptionsStdLib makes it accept exactly what
// crypto/ed25519.Verify accepts: cofactorless, R compared byte for byte
// (so a non-canonical R fails), S below the group order, any point
// encoding for the key, small-order keys and R allowed. A differential
// test and fuzz target (verify_test.go) hold the two to the same answer.
var stdlibOpts = &voi.Options{Verify: voi.VerifyOptionsStdLib}

// maxSigned bounds a signed message: the longer domain and a code's
// signed bytes with the longest challenge.
const maxSigned = len(issuerDomain) + offChallenge + 1 + MaxChallenge

// pubKey is a public key expanded for repeated verification (about
// 1.5 KiB). A nil *pubKey is a key that is not a point on the curve:
// every signature under it fails, as with crypto/ed25519.
type pubKey struct{ k *voi.ExpandedPublicKey }

// expand prepares pub for verification. A key of the wrong length or not
// on the curve gives a key that verifies nothing.
func expand(pub []byte) *pubKey {
	if len(pub) != ed25519.PublicKeySize {
		return nil
	}
	k, err := voi.NewExpandedPublicKey(voi.PublicKey(pub))
	if err != nil {
		return nil
	}
	return &pubKey{k}
}

// verify reports whether sig is pub's signature over domain ‖ body,
// exactly as crypto/ed25519.Verify would.
func (p *pubKey) verify(domain string, body, sig []byte) bool {
	if p == nil || len(sig) != ed25519.SignatureSize {
		return false
	}
	var buf [maxSigned]byte
	msg := append(append(buf[:0], domain...), body...)
	return voi.VerifyExpandedWithOptions(p.k, msg, sig, stdlibOpts)
}

// verifySig checks one signature with a key used once (expanding it
// would cost more than it saves), exactly as crypto/ed25519.Verify would.
func verifySig(pub []byte, domain string, body, sig []byte) bool {
	if len(pub) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize {
		return false
	}
	var buf [maxSigned]byte
	msg := append(append(buf[:0], domain...), body...)
	return voi.VerifyWithOptions(voi.PublicKey(pub), msg, sig, stdlibOpts)
}
