package tap

import (
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"

	"github.com/google/uuid"
)

// CardData is what the acquirer needs to charge a card: the clear PAN, its
// sequence number and expiry, the track-2 equivalent data and the ICC data
// for ISO 8583 DE 55. It exists in the clear only in the gate's memory
// during a tap and inside the payment vault. Its String and LogValue never
// show the PAN.
type CardData struct {
	PAN    string `json:"pan"`
	PSN    string `json:"psn,omitempty"`
	Expiry string `json:"expiry,omitempty"` // YYMMDD
	Track2 []byte `json:"track2,omitempty"` // tag 57 value
	// EMV is the BER-TLV encoded field 55 objects of the tap (emv.Tap.Field55).
	EMV    []byte `json:"emv,omitempty"`
	AID    []byte `json:"aid,omitempty"`
	Scheme string `json:"scheme,omitempty"`
}

// String never shows the card's data.
func (c CardData) String() string { return "tap.CardData{…}" }

// GoString never shows the card's data.
func (c CardData) GoString() string { return c.String() }

// Sealed card data: HPKE (RFC 9180) base mode, DHKEM(X25519, HKDF-SHA256),
// HKDF-SHA256, ChaCha20-Poly1305, info = "faregate card data v1" || gate
// id || 0x00 || tap id, so a sealed blob cannot be moved to another tap.
// The output is HPKE's enc (32 bytes) followed by the ciphertext of the
// JSON encoding of CardData.
const sealLabel = "faregate card data v1"

// MaxSealed bounds a sealed blob: 32 bytes enc, 16 bytes tag and a JSON
// CardData with field 55 (at most a few hundred bytes in practice).
const MaxSealed = 4096

var (
	// ErrSeal: the card data could not be sealed.
	ErrSeal = errors.New("tap: cannot seal card data")
	// ErrOpen: the sealed card data could not be opened. Deliberately vague.
	ErrOpen = errors.New("tap: cannot open sealed card data")
	// ErrKey: a vault key file is not what it should be.
	ErrKey = errors.New("tap: invalid vault key")
)

func suite() (hpke.KEM, hpke.KDF, hpke.AEAD) {
	return hpke.DHKEM(ecdh.X25519()), hpke.HKDFSHA256(), hpke.ChaCha20Poly1305()
}

func sealInfo(gate string, id uuid.UUID) []byte {
	info := make([]byte, 0, len(sealLabel)+len(gate)+1+16)
	info = append(info, sealLabel...)
	info = append(info, gate...)
	info = append(info, 0)
	return append(info, id[:]...)
}

// SealCardData encrypts c to the vault's public key for the tap id of gate. The
// gate cannot open what it sealed.
func SealCardData(vault *ecdh.PublicKey, gate string, id uuid.UUID, c CardData) ([]byte, error) {
	_, kdf, aead := suite()
	pk, err := hpke.NewDHKEMPublicKey(vault)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSeal, err)
	}
	pt, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSeal, err)
	}
	out, err := hpke.Seal(pk, kdf, aead, sealInfo(gate, id), pt)
	clear(pt)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSeal, err)
	}
	return out, nil
}

// OpenCardData decrypts what SealCardData sealed for the tap id of gate. Any failure
// (wrong key, wrong tap, tampered bytes) is ErrOpen and nothing more.
func OpenCardData(vault *ecdh.PrivateKey, gate string, id uuid.UUID, sealed []byte) (CardData, error) {
	if len(sealed) > MaxSealed {
		return CardData{}, ErrOpen
	}
	_, kdf, aead := suite()
	k, err := hpke.NewDHKEMPrivateKey(vault)
	if err != nil {
		return CardData{}, ErrOpen
	}
	pt, err := hpke.Open(k, kdf, aead, sealInfo(gate, id), sealed)
	if err != nil {
		return CardData{}, ErrOpen
	}
	defer clear(pt)
	var c CardData
	if err := json.Unmarshal(pt, &c); err != nil {
		return CardData{}, ErrOpen
	}
	return c, nil
}

// Vault key files are PEM, as OpenSSL writes X25519 keys
// ("openssl genpkey -algorithm x25519"):
//
//	vault.key  "PRIVATE KEY" block, PKCS #8 (RFC 8410), mode 0600
//	vault.pub  "PUBLIC KEY" block, PKIX SubjectPublicKeyInfo (RFC 8410)

// GenerateVaultKey returns a new X25519 vault key drawn from random (nil:
// crypto/rand).
func GenerateVaultKey(random io.Reader) (*ecdh.PrivateKey, error) {
	if random == nil {
		return ecdh.X25519().GenerateKey(nil)
	}
	var seed [32]byte
	if _, err := io.ReadFull(random, seed[:]); err != nil {
		return nil, fmt.Errorf("tap: generate vault key: %w", err)
	}
	return ecdh.X25519().NewPrivateKey(seed[:])
}

// MarshalVaultKey encodes key as a PEM "PRIVATE KEY" block (PKCS #8).
func MarshalVaultKey(key *ecdh.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// MarshalVaultPublicKey encodes pub as a PEM "PUBLIC KEY" block (PKIX).
func MarshalVaultPublicKey(pub *ecdh.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// ParseVaultKey decodes a PEM PKCS #8 X25519 private key.
func ParseVaultKey(b []byte) (*ecdh.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%w: want a PEM \"PRIVATE KEY\" block", ErrKey)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: not PKCS #8", ErrKey)
	}
	ek, ok := k.(*ecdh.PrivateKey)
	if !ok || ek.Curve() != ecdh.X25519() {
		return nil, fmt.Errorf("%w: not an X25519 key", ErrKey)
	}
	return ek, nil
}

// ParseVaultPublicKey decodes a PEM PKIX X25519 public key.
func ParseVaultPublicKey(b []byte) (*ecdh.PublicKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("%w: want a PEM \"PUBLIC KEY\" block", ErrKey)
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: not PKIX", ErrKey)
	}
	ek, ok := k.(*ecdh.PublicKey)
	if !ok || ek.Curve() != ecdh.X25519() {
		return nil, fmt.Errorf("%w: not an X25519 key", ErrKey)
	}
	return ek, nil
}
