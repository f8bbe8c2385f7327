package emv

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"time"
)

// Scheme is a card scheme (payment network).
type Scheme string

const (
	Visa       Scheme = "visa"
	Mastercard Scheme = "mastercard"
	Amex       Scheme = "amex"
	Discover   Scheme = "discover"
	JCB        Scheme = "jcb"
	UnionPay   Scheme = "unionpay"
)

// EMV contactless kernel identifiers (EMV Book B).
const (
	KernelMastercard byte = 2
	KernelVisa       byte = 3
	KernelAmex       byte = 4
	KernelJCB        byte = 5
	KernelDiscover   byte = 6
	KernelUnionPay   byte = 7
)

// Application is one AID the gate accepts and the kernel it runs it with.
type Application struct {
	AID    []byte
	Name   string
	Scheme Scheme
	Kernel byte
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err) // constants only
	}
	return b
}

// DefaultApplications returns the AIDs a gate accepts out of the box.
func DefaultApplications() []Application {
	return []Application{
		{AID: mustHex("A0000000031010"), Name: "Visa", Scheme: Visa, Kernel: KernelVisa},
		{AID: mustHex("A0000000032020"), Name: "V PAY", Scheme: Visa, Kernel: KernelVisa},
		{AID: mustHex("A0000000041010"), Name: "Mastercard", Scheme: Mastercard, Kernel: KernelMastercard},
		{AID: mustHex("A0000000043060"), Name: "Maestro", Scheme: Mastercard, Kernel: KernelMastercard},
		{AID: mustHex("A00000002501"), Name: "American Express", Scheme: Amex, Kernel: KernelAmex},
		{AID: mustHex("A0000001523010"), Name: "Discover/Diners", Scheme: Discover, Kernel: KernelDiscover},
		{AID: mustHex("A0000000651010"), Name: "JCB", Scheme: JCB, Kernel: KernelJCB},
		{AID: mustHex("A000000333010101"), Name: "UnionPay Debit", Scheme: UnionPay, Kernel: KernelUnionPay},
		{AID: mustHex("A000000333010102"), Name: "UnionPay Credit", Scheme: UnionPay, Kernel: KernelUnionPay},
		{AID: mustHex("A000000333010103"), Name: "UnionPay Quasi-credit", Scheme: UnionPay, Kernel: KernelUnionPay},
	}
}

// defaultKernel is the kernel an AID runs on when the card names none
// (EMV Book B 3.3.2.5), by RID.
func defaultKernel(aid []byte) byte {
	if len(aid) < 5 {
		return 0
	}
	switch hex.EncodeToString(aid[:5]) {
	case "a000000004":
		return KernelMastercard
	case "a000000003":
		return KernelVisa
	case "a000000025":
		return KernelAmex
	case "a000000065":
		return KernelJCB
	case "a000000152":
		return KernelDiscover
	case "a000000333":
		return KernelUnionPay
	}
	return 0
}

// Config is the terminal configuration of a gate. The zero value of each
// field means the default in DefaultConfig.
type Config struct {
	// Applications the gate accepts; nil means DefaultApplications.
	Applications []Application
	// TTQ is the Terminal Transaction Qualifiers (9F66) sent to kernel 3 and
	// 7 cards. The default asks for qVSDC, an online cryptogram (deferred
	// authorisation) and offline data authentication for online
	// authorisations: the transit profile.
	TTQ [4]byte
	// Amount authorised (9F02) in minor units; transit taps send 0.
	Amount uint64
	// CurrencyCode (5F2A) and CountryCode (9F1A), ISO numeric (826 = GBP/UK).
	CurrencyCode uint16
	CountryCode  uint16
	// TerminalType (9F35); default 0x25, unattended, offline with online
	// capability.
	TerminalType byte
	// Capabilities (9F33); default 00 08 C8: no CVM, SDA, DDA and CDA.
	Capabilities [3]byte
	// AdditionalCapabilities (9F40).
	AdditionalCapabilities [5]byte
	// TransactionType (9C); 00 = purchase.
	TransactionType byte
	// MerchantNameLocation (9F4E).
	MerchantNameLocation string
	// Location is the time zone of the transaction date (9A) and time
	// (9F21); nil means UTC.
	Location *time.Location

	// Authenticator verifies offline data authentication; nil means ODA is
	// not performed and every tap reports it so.
	Authenticator Authenticator
	// Rand is the source of the unpredictable number (9F37); nil means
	// crypto/rand.
	Rand io.Reader
	// Now is the clock of the transaction date; nil means time.Now.
	Now func() time.Time
	// Record keeps a transcript of every APDU in the Tap.
	Record bool
}

// DefaultConfig returns the transit gate defaults.
func DefaultConfig() Config {
	return Config{
		TTQ:                    [4]byte{0x21, 0x80, 0x40, 0x00},
		CurrencyCode:           826,
		CountryCode:            826,
		TerminalType:           0x25,
		Capabilities:           [3]byte{0x00, 0x08, 0xC8},
		AdditionalCapabilities: [5]byte{0x60, 0x00, 0x00, 0x50, 0x01},
		MerchantNameLocation:   "faregate transit",
	}
}

func (c *Config) fillDefaults() {
	d := DefaultConfig()
	if c.Applications == nil {
		c.Applications = DefaultApplications()
	}
	if c.TTQ == ([4]byte{}) {
		c.TTQ = d.TTQ
	}
	if c.CurrencyCode == 0 {
		c.CurrencyCode = d.CurrencyCode
	}
	if c.CountryCode == 0 {
		c.CountryCode = d.CountryCode
	}
	if c.TerminalType == 0 {
		c.TerminalType = d.TerminalType
	}
	if c.Capabilities == ([3]byte{}) {
		c.Capabilities = d.Capabilities
	}
	if c.AdditionalCapabilities == ([5]byte{}) {
		c.AdditionalCapabilities = d.AdditionalCapabilities
	}
	if c.MerchantNameLocation == "" {
		c.MerchantNameLocation = d.MerchantNameLocation
	}
	if c.Location == nil {
		c.Location = time.UTC
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

func (c *Config) validate() error {
	for i, a := range c.Applications {
		if len(a.AID) < 5 || len(a.AID) > 16 {
			return fmt.Errorf("emv: application %d: AID must be 5 to 16 bytes", i)
		}
		if a.Kernel == 0 || a.Kernel > 0x3F {
			return fmt.Errorf("emv: application %X: kernel identifier %d not supported", a.AID, a.Kernel)
		}
		for _, b := range c.Applications[:i] {
			if bytes.Equal(a.AID, b.AID) {
				return fmt.Errorf("emv: application %X listed twice", a.AID)
			}
		}
	}
	if c.Amount > 999999999999 {
		return fmt.Errorf("emv: amount %d does not fit 12 digits", c.Amount)
	}
	if c.CurrencyCode > 999 || c.CountryCode > 999 {
		return fmt.Errorf("emv: currency and country codes are 3 digits")
	}
	return nil
}

// bcd encodes v as decimal digits packed two per byte, right-justified in
// nbytes bytes.
func bcd(v uint64, nbytes int) []byte {
	return putBCD(make([]byte, nbytes), v)
}

func putBCD(b []byte, v uint64) []byte {
	for i := len(b) - 1; i >= 0; i-- {
		lo := v % 10
		v /= 10
		hi := v % 10
		v /= 10
		b[i] = byte(hi<<4 | lo)
	}
	return b
}
