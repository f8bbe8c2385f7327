package emv

// Format is the EMV data element format (EMV Book 3 4.3).
type Format uint8

const (
	FormatB   Format = iota // binary
	FormatN                 // numeric, BCD, right-justified, leading zeros
	FormatCN                // compressed numeric, BCD, left-justified, trailing F
	FormatAN                // alphanumeric
	FormatANS               // alphanumeric special
	FormatA                 // alphabetic
	FormatVar               // constructed or mixed (templates, track data)
)

func (f Format) String() string {
	return [...]string{"b", "n", "cn", "an", "ans", "a", "var"}[f]
}

// Origin says who produces a data element.
type Origin uint8

const (
	OriginCard Origin = iota + 1
	OriginTerminal
	OriginIssuer
)

func (o Origin) String() string {
	switch o {
	case OriginCard:
		return "card"
	case OriginTerminal:
		return "terminal"
	case OriginIssuer:
		return "issuer"
	}
	return "unknown"
}

// TagInfo describes one EMV data element.
type TagInfo struct {
	Tag    string // upper-case hex
	Name   string
	Format Format
	Origin Origin
	// Sensitive elements hold or reveal the PAN or track data: they are
	// masked in exported transcripts (by mask) and never logged.
	Sensitive bool
	mask      func(value []byte) // masks the value in place, keeping its length
	// FCI elements come with SELECT (File Control Information); the card
	// may repeat them in its records.
	FCI bool

	// fixed, for terminal data the kernel sends on every tap, is its value
	// under a configuration. The unpredictable number (9F37), date (9A)
	// and time (9F21) change with each tap: terminalData sets them.
	fixed func(*Config) []byte
}

// Every set of tags the kernel acts on is derived from tagList, so a tag
// cannot be terminal data in one place and card data in another: a card
// never supplies an OriginTerminal tag (Tap.absorb drops it), whether the
// terminal sets it or not.
const (
	classTerminal uint8 = 1 << iota // OriginTerminal: never taken from the card
	classFCI                        // FCI: may repeat in records
)

var tagClass = func() map[string]uint8 {
	m := make(map[string]uint8, len(tagList))
	for _, t := range tagList {
		var c uint8
		if t.Origin == OriginTerminal {
			c |= classTerminal
		}
		if t.FCI {
			c |= classFCI
		}
		if c != 0 {
			m[t.Tag] = c
		}
	}
	return m
}()

// isTerminalTag reports whether tag is terminal data (OriginTerminal).
func isTerminalTag(tag string) bool { return tagClass[tag]&classTerminal != 0 }

// maskers are the masks of the Sensitive tags.
var maskers = func() map[string]func([]byte) {
	m := map[string]func([]byte){}
	for _, t := range tagList {
		if t.Sensitive {
			m[t.Tag] = t.mask
		}
	}
	return m
}()

// isFCITag reports whether tag is an FCI data object, which may repeat in
// records.
func isFCITag(tag string) bool { return tagClass[tag]&classFCI != 0 }

type fixedObject struct {
	tag   string
	value []byte
}

// fixedTerminalData are the terminal's data objects that do not change
// from tap to tap, from the table's fixed values.
func fixedTerminalData(c *Config) []fixedObject {
	var out []fixedObject
	for _, t := range tagList {
		if t.fixed != nil {
			out = append(out, fixedObject{t.Tag, t.fixed(c)})
		}
	}
	return out
}

// LookupTag returns the dictionary entry of tag (upper-case hex).
func LookupTag(tag string) (TagInfo, bool) {
	t, ok := dictionary[tag]
	return t, ok
}

// Field55Tags are the ICC data elements the acquirer needs in ISO 8583
// DE 55, in the order they are sent. Absent elements are omitted.
var Field55Tags = []string{
	"9F26", "9F27", "9F10", "9F37", "9F36", "95", "9A", "9C", "9F02", "5F2A",
	"82", "9F1A", "9F03", "9F33", "9F34", "9F35", "9F1E", "84", "9F09", "9F41",
	"9F66", "9F6C", "9F6E", "9F7C", "5F34",
}

var dictionary = func() map[string]TagInfo {
	m := make(map[string]TagInfo, len(tagList))
	for _, t := range tagList {
		m[t.Tag] = t
	}
	return m
}()

var tagList = []TagInfo{
	// Templates and directory.
	{Tag: "4F", Name: "Application Identifier (ADF Name)", Format: FormatB, Origin: OriginCard},
	{Tag: "50", Name: "Application Label", Format: FormatANS, Origin: OriginCard, FCI: true},
	{Tag: "61", Name: "Directory Entry", Format: FormatVar, Origin: OriginCard},
	{Tag: "6F", Name: "FCI Template", Format: FormatVar, Origin: OriginCard},
	{Tag: "70", Name: "READ RECORD Response Message Template", Format: FormatVar, Origin: OriginCard},
	{Tag: "77", Name: "Response Message Template Format 2", Format: FormatVar, Origin: OriginCard},
	{Tag: "80", Name: "Response Message Template Format 1", Format: FormatB, Origin: OriginCard},
	{Tag: "83", Name: "Command Template", Format: FormatB, Origin: OriginTerminal},
	{Tag: "84", Name: "Dedicated File (DF) Name", Format: FormatB, Origin: OriginCard, FCI: true},
	{Tag: "87", Name: "Application Priority Indicator", Format: FormatB, Origin: OriginCard, FCI: true},
	{Tag: "A5", Name: "FCI Proprietary Template", Format: FormatVar, Origin: OriginCard},
	{Tag: "BF0C", Name: "FCI Issuer Discretionary Data", Format: FormatVar, Origin: OriginCard},
	{Tag: "9F2A", Name: "Kernel Identifier", Format: FormatB, Origin: OriginCard},
	{Tag: "9F38", Name: "Processing Options Data Object List (PDOL)", Format: FormatB, Origin: OriginCard, FCI: true},
	{Tag: "5F2D", Name: "Language Preference", Format: FormatAN, Origin: OriginCard, FCI: true},
	{Tag: "9F11", Name: "Issuer Code Table Index", Format: FormatN, Origin: OriginCard, FCI: true},
	{Tag: "9F12", Name: "Application Preferred Name", Format: FormatANS, Origin: OriginCard, FCI: true},

	// Card identity.
	{Tag: "5A", Name: "Application Primary Account Number (PAN)", Format: FormatCN, Origin: OriginCard, Sensitive: true, mask: maskPAN},
	{Tag: "5F34", Name: "PAN Sequence Number", Format: FormatN, Origin: OriginCard},
	{Tag: "5F24", Name: "Application Expiration Date", Format: FormatN, Origin: OriginCard},
	{Tag: "5F25", Name: "Application Effective Date", Format: FormatN, Origin: OriginCard},
	{Tag: "5F20", Name: "Cardholder Name", Format: FormatANS, Origin: OriginCard, Sensitive: true, mask: maskName},
	{Tag: "5F28", Name: "Issuer Country Code", Format: FormatN, Origin: OriginCard},
	{Tag: "5F30", Name: "Service Code", Format: FormatN, Origin: OriginCard},
	{Tag: "56", Name: "Track 1 Data", Format: FormatANS, Origin: OriginCard, Sensitive: true, mask: maskTrack1},
	{Tag: "57", Name: "Track 2 Equivalent Data", Format: FormatB, Origin: OriginCard, Sensitive: true, mask: maskTrack2},
	{Tag: "9F1F", Name: "Track 1 Discretionary Data", Format: FormatANS, Origin: OriginCard, Sensitive: true, mask: maskASCIIDigits},
	{Tag: "9F20", Name: "Track 2 Discretionary Data", Format: FormatCN, Origin: OriginCard, Sensitive: true, mask: maskDiscretionary2},
	{Tag: "9F6B", Name: "Track 2 Data (Mastercard)", Format: FormatB, Origin: OriginCard, Sensitive: true, mask: maskTrack2},
	{Tag: "9F24", Name: "Payment Account Reference", Format: FormatAN, Origin: OriginCard},
	{Tag: "9F19", Name: "Token Requestor ID", Format: FormatN, Origin: OriginCard},

	// Processing.
	{Tag: "82", Name: "Application Interchange Profile", Format: FormatB, Origin: OriginCard},
	{Tag: "94", Name: "Application File Locator", Format: FormatVar, Origin: OriginCard},
	{Tag: "8C", Name: "Card Risk Management Data Object List 1 (CDOL1)", Format: FormatB, Origin: OriginCard},
	{Tag: "8D", Name: "Card Risk Management Data Object List 2 (CDOL2)", Format: FormatB, Origin: OriginCard},
	{Tag: "8E", Name: "Cardholder Verification Method (CVM) List", Format: FormatB, Origin: OriginCard},
	{Tag: "9F07", Name: "Application Usage Control", Format: FormatB, Origin: OriginCard},
	{Tag: "9F08", Name: "Application Version Number (card)", Format: FormatB, Origin: OriginCard},
	{Tag: "9F0D", Name: "Issuer Action Code - Default", Format: FormatB, Origin: OriginCard},
	{Tag: "9F0E", Name: "Issuer Action Code - Denial", Format: FormatB, Origin: OriginCard},
	{Tag: "9F0F", Name: "Issuer Action Code - Online", Format: FormatB, Origin: OriginCard},
	{Tag: "9F42", Name: "Application Currency Code", Format: FormatN, Origin: OriginCard},
	{Tag: "9F44", Name: "Application Currency Exponent", Format: FormatN, Origin: OriginCard},
	{Tag: "9F5D", Name: "Available Offline Spending Amount", Format: FormatB, Origin: OriginCard},
	{Tag: "9F6C", Name: "Card Transaction Qualifiers", Format: FormatB, Origin: OriginCard},
	{Tag: "9F6E", Name: "Form Factor Indicator / Third Party Data", Format: FormatB, Origin: OriginCard},
	{Tag: "9F7C", Name: "Customer Exclusive Data", Format: FormatB, Origin: OriginCard},
	{Tag: "9F10", Name: "Issuer Application Data", Format: FormatB, Origin: OriginCard},
	{Tag: "9F26", Name: "Application Cryptogram", Format: FormatB, Origin: OriginCard},
	{Tag: "9F27", Name: "Cryptogram Information Data", Format: FormatB, Origin: OriginCard},
	{Tag: "9F36", Name: "Application Transaction Counter", Format: FormatB, Origin: OriginCard},
	{Tag: "9F13", Name: "Last Online ATC Register", Format: FormatB, Origin: OriginCard},
	{Tag: "9F17", Name: "PIN Try Counter", Format: FormatB, Origin: OriginCard},

	// Offline data authentication.
	{Tag: "8F", Name: "Certification Authority Public Key Index", Format: FormatB, Origin: OriginCard},
	{Tag: "90", Name: "Issuer Public Key Certificate", Format: FormatB, Origin: OriginCard},
	{Tag: "92", Name: "Issuer Public Key Remainder", Format: FormatB, Origin: OriginCard},
	{Tag: "9F32", Name: "Issuer Public Key Exponent", Format: FormatB, Origin: OriginCard},
	{Tag: "9F46", Name: "ICC Public Key Certificate", Format: FormatB, Origin: OriginCard},
	{Tag: "9F47", Name: "ICC Public Key Exponent", Format: FormatB, Origin: OriginCard},
	{Tag: "9F48", Name: "ICC Public Key Remainder", Format: FormatB, Origin: OriginCard},
	{Tag: "9F49", Name: "Dynamic Data Authentication Data Object List (DDOL)", Format: FormatB, Origin: OriginCard},
	{Tag: "9F4A", Name: "Static Data Authentication Tag List", Format: FormatB, Origin: OriginCard},
	{Tag: "93", Name: "Signed Static Application Data", Format: FormatB, Origin: OriginCard},
	{Tag: "9F45", Name: "Data Authentication Code", Format: FormatB, Origin: OriginCard},
	{Tag: "9F4B", Name: "Signed Dynamic Application Data", Format: FormatB, Origin: OriginCard},
	{Tag: "9F4C", Name: "ICC Dynamic Number", Format: FormatB, Origin: OriginCard},
	{Tag: "9F69", Name: "Card Authentication Related Data", Format: FormatB, Origin: OriginCard},

	// Terminal data.
	{Tag: "9F02", Name: "Amount, Authorised (Numeric)", Format: FormatN, Origin: OriginTerminal,
		fixed: func(c *Config) []byte { return bcd(c.Amount, 6) }},
	{Tag: "9F03", Name: "Amount, Other (Numeric)", Format: FormatN, Origin: OriginTerminal,
		fixed: func(*Config) []byte { return bcd(0, 6) }},
	{Tag: "5F2A", Name: "Transaction Currency Code", Format: FormatN, Origin: OriginTerminal,
		fixed: func(c *Config) []byte { return bcd(uint64(c.CurrencyCode), 2) }},
	{Tag: "5F36", Name: "Transaction Currency Exponent", Format: FormatN, Origin: OriginTerminal},
	{Tag: "9F1A", Name: "Terminal Country Code", Format: FormatN, Origin: OriginTerminal,
		fixed: func(c *Config) []byte { return bcd(uint64(c.CountryCode), 2) }},
	{Tag: "95", Name: "Terminal Verification Results", Format: FormatB, Origin: OriginTerminal,
		fixed: func(*Config) []byte { return make([]byte, 5) }},
	{Tag: "9A", Name: "Transaction Date", Format: FormatN, Origin: OriginTerminal},
	{Tag: "9F21", Name: "Transaction Time", Format: FormatN, Origin: OriginTerminal},
	{Tag: "9C", Name: "Transaction Type", Format: FormatN, Origin: OriginTerminal,
		fixed: func(c *Config) []byte { return []byte{c.TransactionType} }},
	{Tag: "9F37", Name: "Unpredictable Number", Format: FormatB, Origin: OriginTerminal},
	{Tag: "9F35", Name: "Terminal Type", Format: FormatN, Origin: OriginTerminal,
		fixed: func(c *Config) []byte { return []byte{c.TerminalType} }},
	{Tag: "9F33", Name: "Terminal Capabilities", Format: FormatB, Origin: OriginTerminal,
		fixed: func(c *Config) []byte { return c.Capabilities[:] }},
	{Tag: "9F40", Name: "Additional Terminal Capabilities", Format: FormatB, Origin: OriginTerminal,
		fixed: func(c *Config) []byte { return c.AdditionalCapabilities[:] }},
	{Tag: "9F4E", Name: "Merchant Name and Location", Format: FormatANS, Origin: OriginTerminal,
		fixed: func(c *Config) []byte { return []byte(c.MerchantNameLocation) }},
	{Tag: "9F66", Name: "Terminal Transaction Qualifiers", Format: FormatB, Origin: OriginTerminal,
		fixed: func(c *Config) []byte { return c.TTQ[:] }},
	{Tag: "9F09", Name: "Application Version Number (terminal)", Format: FormatB, Origin: OriginTerminal},
	{Tag: "9F1E", Name: "Interface Device (IFD) Serial Number", Format: FormatAN, Origin: OriginTerminal},
	{Tag: "9F34", Name: "Cardholder Verification Method (CVM) Results", Format: FormatB, Origin: OriginTerminal,
		fixed: func(*Config) []byte { return []byte{0x1F, 0x00, 0x02} }}, // no CVM performed, successful
	{Tag: "9F41", Name: "Transaction Sequence Counter", Format: FormatN, Origin: OriginTerminal},
	{Tag: "9F53", Name: "Transaction Category Code", Format: FormatAN, Origin: OriginTerminal},
	{Tag: "9F15", Name: "Merchant Category Code", Format: FormatN, Origin: OriginTerminal},
	{Tag: "9F16", Name: "Merchant Identifier", Format: FormatANS, Origin: OriginTerminal},
	{Tag: "9F1C", Name: "Terminal Identification", Format: FormatAN, Origin: OriginTerminal},
	{Tag: "9F01", Name: "Acquirer Identifier", Format: FormatN, Origin: OriginTerminal},
	{Tag: "9F06", Name: "Application Identifier (terminal)", Format: FormatB, Origin: OriginTerminal},
	{Tag: "9F6A", Name: "Unpredictable Number (Numeric)", Format: FormatB, Origin: OriginTerminal},
	{Tag: "9F7A", Name: "VLP Terminal Support Indicator", Format: FormatB, Origin: OriginTerminal},
	{Tag: "DF8129", Name: "Outcome Parameter Set", Format: FormatB, Origin: OriginTerminal},

	// Issuer (online response), for completeness of field 55.
	{Tag: "91", Name: "Issuer Authentication Data", Format: FormatB, Origin: OriginIssuer},
	{Tag: "71", Name: "Issuer Script Template 1", Format: FormatVar, Origin: OriginIssuer},
	{Tag: "72", Name: "Issuer Script Template 2", Format: FormatVar, Origin: OriginIssuer},
	{Tag: "8A", Name: "Authorisation Response Code", Format: FormatAN, Origin: OriginIssuer},
}
