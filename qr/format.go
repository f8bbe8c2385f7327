package qr

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/faregate/faregate/rider"
)

// Payload layout, version 1. All integers big-endian; times are Unix
// seconds (uint32: until 2106).
//
//	off   len  field
//	  0     1  version = 1
//	               ── credential: signed by the back office ──
//	  1     2  issuer key id (KeyIDOf the issuer's public key)
//	  3    16  rider token (the account pseudonym, rider.Token)
//	 19    32  device public key (Ed25519)
//	 51     4  not before
//	 55     4  not after
//	 59     1  rider category
//	 60    64  issuer signature: Ed25519 over "faregate-qr-credential\x00" ‖ bytes 0‥59
//	               ── dynamic part: signed by the device key ──
//	124     4  time the code was made (device clock)
//	128     4  counter (per device key, strictly increasing)
//	132     1  challenge length n, 0‥16
//	133     n  gate challenge
//	133+n  64  device signature: Ed25519 over "faregate-qr-code\x00" ‖ bytes 0‥132+n
//
// 197 bytes without a challenge, 213 with the longest. The text form is
// "FQ:" followed by the payload in Base45 (docs/qr.md says why).
const (
	Version = 1

	// CredentialSize is the length of an encoded credential (bytes 0‥123).
	CredentialSize = 124
	// MaxChallenge is the longest gate challenge a code can carry.
	MaxChallenge = 16
	// MinPayloadSize and MaxPayloadSize bound a binary payload.
	MinPayloadSize = CredentialSize + 9 + ed25519.SignatureSize
	MaxPayloadSize = MinPayloadSize + MaxChallenge

	// TextPrefix starts the text form of every code. It is in QR's
	// alphanumeric alphabet, so the whole text is.
	TextPrefix = "FQ:"
	// MaxTextSize bounds the text form.
	MaxTextSize = len(TextPrefix) + MaxPayloadSize/2*3 + MaxPayloadSize%2*2

	credSigned   = 60
	offTime      = CredentialSize
	offChallenge = CredentialSize + 8

	issuerDomain = "faregate-qr-credential\x00"
	deviceDomain = "faregate-qr-code\x00"
)

// KeyID names an issuer key inside a credential so gates can hold the
// current and the next (or previous) key during a rotation. It is derived
// from the key, not assigned: the first two bytes of SHA-256 of the
// 32-byte public key (derived, like a DNSSEC key tag), so a key file needs no id
// beside it and cannot carry a wrong one.
type KeyID uint16

// KeyIDOf returns the key id of an issuer public key.
func KeyIDOf(pub ed25519.PublicKey) KeyID {
	h := sha256.Sum256(pub)
	return KeyID(binary.BigEndian.Uint16(h[:2]))
}

func (k KeyID) String() string { return fmt.Sprintf("%04x", uint16(k)) }

// DeviceKey is a device's Ed25519 public key. The gate and the back office
// count replays per device key.
type DeviceKey [ed25519.PublicKeySize]byte

// Category is the rider category the fare engine prices by. The values
// are part of the format; the names match the categories of the fare rules
// (capping).
type Category uint8

const (
	Adult   Category = 0
	Child   Category = 1
	Senior  Category = 2
	Reduced Category = 3
)

var categoryNames = []string{"adult", "child", "senior", "reduced"}

// String returns the category's name as the fare rules spell it, or
// "category-N" for a value this version does not name.
func (c Category) String() string {
	if int(c) < len(categoryNames) {
		return categoryNames[c]
	}
	return fmt.Sprintf("category-%d", uint8(c))
}

// ParseCategory parses a category name (adult, child, senior, reduced).
func ParseCategory(s string) (Category, error) {
	for i, n := range categoryNames {
		if n == s {
			return Category(i), nil
		}
	}
	return 0, fmt.Errorf("qr: unknown rider category %q (want one of %s)", s, strings.Join(categoryNames, ", "))
}

// Credential is what the back office certifies: this device key acts for
// this rider token from NotBefore to NotAfter.
type Credential struct {
	KeyID     KeyID
	Token     rider.Token
	Device    DeviceKey
	NotBefore time.Time // whole seconds
	NotAfter  time.Time // whole seconds, inclusive
	Category  Category
	Signature [ed25519.SignatureSize]byte
}

// Code is one decoded payload: the credential and the dynamic part. A
// parsed Code is well formed, not verified: that is Gate.Verify's and
// BackOffice.Verify's job.
type Code struct {
	Credential Credential
	Time       time.Time // when the device made the code, by its clock
	Counter    uint32
	Challenge  []byte // nil when the code carries none
	Signature  [ed25519.SignatureSize]byte

	raw []byte // the payload; signatures are checked over its bytes
}

// Payload returns the binary payload the code was parsed from.
func (c *Code) Payload() []byte { return append([]byte(nil), c.raw...) }

func unix32(t time.Time) (uint32, error) {
	s := t.Unix()
	if s < 0 || s > math.MaxUint32 {
		return 0, fmt.Errorf("qr: time %s outside 1970‥2106", t.UTC().Format(time.RFC3339))
	}
	return uint32(s), nil
}

func fromUnix32(b []byte) time.Time {
	return time.Unix(int64(binary.BigEndian.Uint32(b)), 0).UTC()
}

// credentialBody encodes bytes 0‥59, what the issuer signs.
func (c *Credential) body() ([]byte, error) {
	nb, err := unix32(c.NotBefore)
	if err != nil {
		return nil, err
	}
	na, err := unix32(c.NotAfter)
	if err != nil {
		return nil, err
	}
	if na < nb {
		return nil, fmt.Errorf("qr: credential ends before it starts")
	}
	b := make([]byte, credSigned, MaxPayloadSize)
	b[0] = Version
	binary.BigEndian.PutUint16(b[1:], uint16(c.KeyID))
	copy(b[3:], c.Token[:])
	copy(b[19:], c.Device[:])
	binary.BigEndian.PutUint32(b[51:], nb)
	binary.BigEndian.PutUint32(b[55:], na)
	b[59] = byte(c.Category)
	return b, nil
}

// MarshalBinary encodes the signed credential (CredentialSize bytes).
func (c *Credential) MarshalBinary() ([]byte, error) {
	b, err := c.body()
	if err != nil {
		return nil, err
	}
	return append(b, c.Signature[:]...), nil
}

// ParseCredential decodes an encoded credential (as a device stores it).
// It checks the form, not the signature.
func ParseCredential(b []byte) (*Credential, error) {
	if len(b) != CredentialSize {
		return nil, refuse(ReasonMalformed, "credential is %d bytes, want %d", len(b), CredentialSize)
	}
	var c Credential
	if err := c.decode(b); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *Credential) decode(b []byte) *Error {
	if b[0] != Version {
		return refuse(ReasonUnsupportedVersion, "version %d, want %d", b[0], Version)
	}
	c.KeyID = KeyID(binary.BigEndian.Uint16(b[1:]))
	copy(c.Token[:], b[3:19])
	copy(c.Device[:], b[19:51])
	c.NotBefore = fromUnix32(b[51:])
	c.NotAfter = fromUnix32(b[55:])
	if c.NotAfter.Before(c.NotBefore) {
		return refuse(ReasonMalformed, "validity ends before it starts")
	}
	c.Category = Category(b[59])
	copy(c.Signature[:], b[credSigned:CredentialSize])
	return nil
}

// Sign completes c as the back office: it sets KeyID from key and signs.
// Token, Device, NotBefore, NotAfter and Category must be set.
func (c *Credential) Sign(key ed25519.PrivateKey) error {
	if len(key) != ed25519.PrivateKeySize {
		return fmt.Errorf("qr: issuer key is not an Ed25519 private key")
	}
	c.KeyID = KeyIDOf(key.Public().(ed25519.PublicKey))
	body, err := c.body()
	if err != nil {
		return err
	}
	copy(c.Signature[:], ed25519.Sign(key, signed(issuerDomain, body)))
	return nil
}

// VerifySignature checks the issuer's signature with pub. It does not look
// at KeyID or validity.
func (c *Credential) VerifySignature(pub ed25519.PublicKey) error {
	body, err := c.body()
	if err != nil {
		return refuse(ReasonMalformed, "%v", err)
	}
	if !verifySig(pub, issuerDomain, body, c.Signature[:]) {
		return refuse(ReasonBadIssuerSignature, "")
	}
	return nil
}

func signed(domain string, body []byte) []byte {
	m := make([]byte, 0, len(domain)+len(body))
	return append(append(m, domain...), body...)
}

// ParseBinary decodes a binary payload strictly: exact length, known
// version, bounded challenge, consistent validity. It never panics, and
// the Code keeps a copy of b (the caller may reuse its buffer).
func ParseBinary(b []byte) (*Code, error) {
	if len(b) > MaxPayloadSize {
		return parseBinary(b) // refused; nothing worth copying
	}
	return parseBinary(append(make([]byte, 0, len(b)), b...))
}

// parseBinary is ParseBinary keeping b itself.
func parseBinary(b []byte) (*Code, error) {
	if len(b) < MinPayloadSize || len(b) > MaxPayloadSize {
		if len(b) >= 1 && b[0] != Version {
			return nil, refuse(ReasonUnsupportedVersion, "version %d, want %d", b[0], Version)
		}
		return nil, refuse(ReasonMalformed, "payload is %d bytes, want %d to %d", len(b), MinPayloadSize, MaxPayloadSize)
	}
	c := &Code{}
	if err := c.Credential.decode(b[:CredentialSize]); err != nil {
		return nil, err
	}
	n := int(b[offChallenge])
	if n > MaxChallenge {
		return nil, refuse(ReasonMalformed, "challenge of %d bytes, at most %d", n, MaxChallenge)
	}
	if len(b) != MinPayloadSize+n {
		return nil, refuse(ReasonMalformed, "payload is %d bytes, want %d for a %d-byte challenge", len(b), MinPayloadSize+n, n)
	}
	c.Time = fromUnix32(b[offTime:])
	c.Counter = binary.BigEndian.Uint32(b[offTime+4:])
	if n > 0 {
		c.Challenge = b[offChallenge+1 : offChallenge+1+n : offChallenge+1+n]
	}
	copy(c.Signature[:], b[offChallenge+1+n:])
	c.raw = b
	return c, nil
}

// Parse decodes the text form ("FQ:" and Base45), as a scanner reads it
// from the QR code. Only a trailing CR or LF is tolerated around it.
func Parse(text string) (*Code, error) {
	text = strings.TrimRight(text, "\r\n")
	if len(text) > MaxTextSize {
		return nil, refuse(ReasonMalformed, "text is %d characters, at most %d", len(text), MaxTextSize)
	}
	body, ok := strings.CutPrefix(text, TextPrefix)
	if !ok {
		return nil, refuse(ReasonMalformed, "text does not start with %q", TextPrefix)
	}
	b, err := decodeBase45(make([]byte, 0, MaxPayloadSize), body)
	if err != nil {
		return nil, refuse(ReasonMalformed, "%v", err)
	}
	return parseBinary(b)
}

// Text returns the text form of a binary payload: what the QR code holds.
func Text(payload []byte) string {
	return string(appendBase45([]byte(TextPrefix), payload))
}

// VerifySignature checks the device signature with the credential's
// device key. It does not check the issuer's signature.
func (c *Code) VerifySignature() error {
	n := len(c.Challenge)
	if !verifySig(c.Credential.Device[:], deviceDomain, c.raw[:offChallenge+1+n], c.Signature[:]) {
		return refuse(ReasonBadDeviceSignature, "")
	}
	return nil
}

// verifyDevice is VerifySignature with the device key expanded before
// (expand(c.Credential.Device[:])).
func (c *Code) verifyDevice(dev *pubKey) error {
	n := len(c.Challenge)
	if !dev.verify(deviceDomain, c.raw[:offChallenge+1+n], c.Signature[:]) {
		return refuse(ReasonBadDeviceSignature, "")
	}
	return nil
}

// Device is what the rider's app holds: its credential and the device's
// private key. It makes codes; the app keeps the counter and must store
// each counter before it shows the code made with it.
type Device struct {
	Credential Credential
	Key        ed25519.PrivateKey
}

// Code makes the binary payload for time at and counter; challenge is the
// gate's challenge (nil: none).
func (d *Device) Code(at time.Time, counter uint32, challenge []byte) ([]byte, error) {
	if len(challenge) > MaxChallenge {
		return nil, fmt.Errorf("qr: challenge of %d bytes, at most %d", len(challenge), MaxChallenge)
	}
	if len(d.Key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("qr: device key is not an Ed25519 private key")
	}
	if DeviceKey(d.Key.Public().(ed25519.PublicKey)) != d.Credential.Device {
		return nil, fmt.Errorf("qr: device key does not match the credential")
	}
	ts, err := unix32(at)
	if err != nil {
		return nil, err
	}
	b, err := d.Credential.MarshalBinary()
	if err != nil {
		return nil, err
	}
	b = binary.BigEndian.AppendUint32(b, ts)
	b = binary.BigEndian.AppendUint32(b, counter)
	b = append(b, byte(len(challenge)))
	b = append(b, challenge...)
	return append(b, ed25519.Sign(d.Key, signed(deviceDomain, b))...), nil
}
