package odatest

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/faregate/faregate/oda"
)

// HierarchyConfig describes a test CA → issuer → card key hierarchy. Zero
// fields take the defaults shown.
type HierarchyConfig struct {
	RID   []byte // A000000003
	Index byte   // 92
	// Key sizes in bits: CA 1408, issuer 1152, ICC 1024.
	CABits, IssuerBits, ICCBits int
	// Exponent of all three keys: 3 (or 65537).
	Exponent int
	// CAExpiry is the CA key's last valid day, YYYY-MM-DD ("" none).
	CAExpiry string

	IssuerID     string // 6 leftmost PAN digits when empty
	IssuerExpiry string // 1230
	IssuerSerial []byte // 000001
	PAN          string // 4761739001010010
	ICCExpiry    string // 1230
	ICCSerial    []byte // 000001
}

// Hierarchy is a generated test PKI: a CA key, an issuer key certified by
// it and an ICC key certified by the issuer.
type Hierarchy struct {
	RID             [5]byte
	Index           byte
	CAExpiry        string
	CA, Issuer, ICC *rsa.PrivateKey
	IssuerTemplate  IssuerTemplate
	ICCTemplate     ICCTemplate
}

// NewHierarchy generates the three keys of cfg from random (crypto/rand's
// Reader, or a deterministic reader for reproducible keys).
func NewHierarchy(random io.Reader, cfg HierarchyConfig) (*Hierarchy, error) {
	ca, issuer, icc, err := generateKeys(random, &cfg)
	if err != nil {
		return nil, err
	}
	return HierarchyFromKeys(cfg, ca, issuer, icc)
}

func generateKeys(random io.Reader, cfg *HierarchyConfig) (ca, issuer, icc *rsa.PrivateKey, err error) {
	e := cfg.Exponent
	if e == 0 {
		e = 3
	}
	if ca, err = GenerateKey(random, or(cfg.CABits, 1408), e); err != nil {
		return nil, nil, nil, err
	}
	if issuer, err = GenerateKey(random, or(cfg.IssuerBits, 1152), e); err != nil {
		return nil, nil, nil, err
	}
	if icc, err = GenerateKey(random, or(cfg.ICCBits, 1024), e); err != nil {
		return nil, nil, nil, err
	}
	return ca, issuer, icc, nil
}

// HierarchyFromKeys builds a Hierarchy from existing keys (read from files
// with ReadKeyFile); the key sizes and exponent of cfg are ignored.
func HierarchyFromKeys(cfg HierarchyConfig, ca, issuer, icc *rsa.PrivateKey) (*Hierarchy, error) {
	if ca == nil || issuer == nil || icc == nil {
		return nil, errors.New("odatest: hierarchy needs three keys")
	}
	h := &Hierarchy{Index: cfg.Index, CAExpiry: cfg.CAExpiry, CA: ca, Issuer: issuer, ICC: icc}
	rid := cfg.RID
	if rid == nil {
		rid = []byte{0xA0, 0x00, 0x00, 0x00, 0x03}
	}
	if len(rid) != 5 {
		return nil, fmt.Errorf("odatest: RID of %d bytes, want 5", len(rid))
	}
	copy(h.RID[:], rid)
	if h.Index == 0 {
		h.Index = 0x92
	}
	pan := orS(cfg.PAN, "4761739001010010")
	if !digits(pan, 12, 19) {
		return nil, fmt.Errorf("odatest: PAN must be 12 to 19 digits")
	}
	if cfg.IssuerID != "" && !digits(cfg.IssuerID, 3, 8) {
		return nil, fmt.Errorf("odatest: issuer identifier %q must be 3 to 8 digits", cfg.IssuerID)
	}
	for _, e := range []string{cfg.IssuerExpiry, cfg.ICCExpiry} {
		if e != "" && (!digits(e, 4, 4) || e[:2] < "01" || e[:2] > "12") {
			return nil, fmt.Errorf("odatest: expiry %q is not MMYY", e)
		}
	}
	h.IssuerTemplate = IssuerTemplate{
		IssuerID: orS(cfg.IssuerID, pan[:min(6, len(pan))]),
		Expiry:   orS(cfg.IssuerExpiry, "1230"),
		Serial:   cfg.IssuerSerial,
		Key:      &issuer.PublicKey,
	}
	h.ICCTemplate = ICCTemplate{
		PAN:    pan,
		Expiry: orS(cfg.ICCExpiry, "1230"),
		Serial: cfg.ICCSerial,
		Key:    &icc.PublicKey,
	}
	if _, _, err := IssuerCertificate(ca, h.IssuerTemplate); err != nil {
		return nil, err
	}
	return h, nil
}

func digits(s string, minLen, maxLen int) bool {
	if len(s) < minLen || len(s) > maxLen {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func or(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

func orS(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// CAKey returns the CA public key as an oda key list entry, marked test.
func (h *Hierarchy) CAKey() (oda.CAKey, error) {
	k := oda.CAKey{
		RID:         h.RID,
		Index:       h.Index,
		Modulus:     h.CA.N.Bytes(),
		Exponent:    ExponentBytes(h.CA.E),
		Test:        true,
		Description: "faregate odatest generated test CA",
	}
	if h.CAExpiry != "" {
		var err error
		if k.Expiry, err = parseDate(h.CAExpiry); err != nil {
			return oda.CAKey{}, err
		}
	}
	return k, nil
}

// KeyStore returns a store holding the hierarchy's CA key alone.
func (h *Hierarchy) KeyStore() (*oda.KeyStore, error) {
	k, err := h.CAKey()
	if err != nil {
		return nil, err
	}
	return oda.NewKeyStore(k)
}

// IssuerCertificate returns the issuer certificate (90) and remainder (92).
func (h *Hierarchy) IssuerCertificate() (cert, remainder []byte, err error) {
	return IssuerCertificate(h.CA, h.IssuerTemplate)
}

// CardData holds the ODA data objects of a personalised card.
type CardData struct {
	CAIndex         byte   // 8F
	IssuerCert      []byte // 90
	IssuerRemainder []byte // 92, nil when the issuer key fits in 90
	IssuerExponent  []byte // 9F32
	ICCCert         []byte // 9F46
	ICCRemainder    []byte // 9F48, nil when the ICC key fits in 9F46
	ICCExponent     []byte // 9F47
	SSAD            []byte // 93
}

// Objects returns the data objects by tag (upper-case hex), without the
// remainders when they are not needed.
func (c *CardData) Objects() map[string][]byte {
	m := map[string][]byte{
		"8F":   {c.CAIndex},
		"90":   c.IssuerCert,
		"9F32": c.IssuerExponent,
		"9F46": c.ICCCert,
		"9F47": c.ICCExponent,
		"93":   c.SSAD,
	}
	if c.IssuerRemainder != nil {
		m["92"] = c.IssuerRemainder
	}
	if c.ICCRemainder != nil {
		m["9F48"] = c.ICCRemainder
	}
	return m
}

// Personalise certifies the card's static data to be authenticated: it
// returns every ODA data object of the card (8F, 90, 92, 9F32, 9F46, 9F47,
// 9F48, 93). staticData must be what a terminal will build: the ODA-flagged
// records (so the records holding these objects must not be flagged) plus
// the AIP when 9F4A is 82.
func (h *Hierarchy) Personalise(staticData []byte, dac [2]byte) (*CardData, error) {
	c := &CardData{
		CAIndex:        h.Index,
		IssuerExponent: ExponentBytes(h.Issuer.E),
		ICCExponent:    ExponentBytes(h.ICC.E),
	}
	var err error
	if c.IssuerCert, c.IssuerRemainder, err = IssuerCertificate(h.CA, h.IssuerTemplate); err != nil {
		return nil, err
	}
	if c.ICCCert, c.ICCRemainder, err = ICCCertificate(h.Issuer, 0, h.ICCTemplate, staticData); err != nil {
		return nil, err
	}
	if c.SSAD, err = SignStaticData(h.Issuer, dac, staticData); err != nil {
		return nil, err
	}
	return c, nil
}

// MarshalPKCS1PEM encodes key as a PEM "RSA PRIVATE KEY" (PKCS #1) block.
func MarshalPKCS1PEM(key *rsa.PrivateKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
}

// MarshalPKCS8PEM encodes key as a PEM "PRIVATE KEY" (PKCS #8) block.
func MarshalPKCS8PEM(key *rsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("odatest: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParseKeyPEM reads an RSA private key from a PEM block, PKCS #1 ("RSA
// PRIVATE KEY") or PKCS #8 ("PRIVATE KEY").
func ParseKeyPEM(data []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("odatest: no PEM block")
	}
	switch block.Type {
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("odatest: %w", err)
		}
		return k, nil
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("odatest: %w", err)
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("odatest: PKCS #8 key is %T, not RSA", k)
		}
		return rk, nil
	}
	return nil, fmt.Errorf("odatest: PEM block %q is not a private key", block.Type)
}

// WriteKeyFile writes key to a new file (PKCS #1 PEM, mode 0600). An
// existing file is not overwritten.
func WriteKeyFile(path string, key *rsa.PrivateKey) error {
	return writeFile(path, MarshalPKCS1PEM(key), 0o600, false)
}

// ReadKeyFile reads a private key file written by WriteKeyFile (or any
// PKCS #1 or PKCS #8 RSA PEM file).
func ReadKeyFile(path string) (*rsa.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("odatest: %w", err)
	}
	k, err := ParseKeyPEM(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

func parseDate(s string) (time.Time, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("odatest: CA expiry %q is not YYYY-MM-DD", s)
	}
	return t, nil
}

// Hex is upper-case hex of b, the form of the CA key list and the CLI.
func Hex(b []byte) string { return fmt.Sprintf("%X", b) }
