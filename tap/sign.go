package tap

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"time"
)

// The upload request is signed by the gate's Ed25519 key (docs/api.md):
//
//	Faregate-Gate:      the gate id
//	Faregate-Date:      the signing time, RFC 3339 in UTC, whole seconds
//	Faregate-Signature: base64 (standard, padded) of Ed25519(key, message)
//
//	message = "faregate-upload-v1" LF method LF path LF gate LF date LF
//	          lower-case hex SHA-256 of the body
const (
	HeaderGate      = "Faregate-Gate"
	HeaderDate      = "Faregate-Date"
	HeaderSignature = "Faregate-Signature"
	signLabel       = "faregate-upload-v1"
	// MaxSkew is how far the signing time may be from the back office's
	// clock, either way.
	MaxSkew = 5 * time.Minute
)

// ErrUnauthorized: the request is not signed by the gate it names, or not
// now. Deliberately vague: the back office answers 401 and says no more.
var ErrUnauthorized = errors.New("tap: request not authenticated")

func signedMessage(method, path, gate, date string, body []byte) []byte {
	sum := sha256.Sum256(body)
	msg := make([]byte, 0, 128)
	for _, p := range []string{signLabel, method, path, gate, date} {
		msg = append(msg, p...)
		msg = append(msg, '\n')
	}
	return append(msg, hex.EncodeToString(sum[:])...)
}

// SignRequest sets the three headers that authenticate req, whose body is
// body, as gate at time now.
func SignRequest(req *http.Request, gate string, key ed25519.PrivateKey, now time.Time, body []byte) {
	date := now.UTC().Truncate(time.Second).Format(time.RFC3339)
	sig := ed25519.Sign(key, signedMessage(req.Method, req.URL.EscapedPath(), gate, date, body))
	req.Header.Set(HeaderGate, gate)
	req.Header.Set(HeaderDate, date)
	req.Header.Set(HeaderSignature, base64.StdEncoding.EncodeToString(sig))
}

// VerifyRequest checks req's signature over body against the key of the
// gate it names (keyOf returns nil for an unknown or disabled gate) and
// that its date is within MaxSkew of now. It returns the authenticated
// gate id, or ErrUnauthorized.
func VerifyRequest(req *http.Request, body []byte, keyOf func(gate string) ed25519.PublicKey, now time.Time) (string, error) {
	gate := req.Header.Get(HeaderGate)
	date := req.Header.Get(HeaderDate)
	sig, err := base64.StdEncoding.DecodeString(req.Header.Get(HeaderSignature))
	if gate == "" || len(gate) > MaxField || err != nil || len(sig) != ed25519.SignatureSize {
		return "", ErrUnauthorized
	}
	t, err := time.Parse(time.RFC3339, date)
	if err != nil || t.Sub(now) > MaxSkew || now.Sub(t) > MaxSkew {
		return "", ErrUnauthorized
	}
	pub := keyOf(gate)
	if len(pub) != ed25519.PublicKeySize {
		return "", ErrUnauthorized
	}
	if !ed25519.Verify(pub, signedMessage(req.Method, req.URL.EscapedPath(), gate, date, body), sig) {
		return "", ErrUnauthorized
	}
	return gate, nil
}
