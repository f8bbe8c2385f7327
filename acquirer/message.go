package acquirer

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/faregate/faregate/capping"
	"github.com/faregate/faregate/tap"
	"github.com/moov-io/iso8583"
)

// Kind is what a request does.
type Kind int

const (
	// KindCharge takes an amount: 0200, processing code 000000.
	KindCharge Kind = iota
	// KindRefund gives an amount back: 0200, processing code 200000.
	KindRefund
	// KindAccountCheck asks the issuer whether the card is good without
	// moving money: 0100, amount 0, POS condition 51.
	KindAccountCheck
)

func (k Kind) String() string {
	switch k {
	case KindCharge:
		return "charge"
	case KindRefund:
		return "refund"
	case KindAccountCheck:
		return "account_check"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Request is one charge, refund or account check.
type Request struct {
	Kind Kind
	// Reference identifies the charge in the back office (its id). Its
	// retrieval reference number (field 37) is derived from it, so every
	// attempt at the same charge carries the same RRN.
	Reference string
	// Terminal is field 41, the terminal id of the gate whose tap the
	// request carries (TerminalID).
	Terminal string
	// Amount is positive for a charge or refund, zero for an account check.
	Amount   capping.Amount
	Currency capping.Currency
	// Card comes from the payment vault; it exists only in memory for the
	// time of the request.
	Card tap.CardData
	// LocalTime is the local time of the transaction (fields 12 and 13);
	// zero means the time of sending.
	LocalTime time.Time
}

// MaxAmount is the largest amount field 4 (12 digits) carries.
const MaxAmount = capping.Amount(999_999_999_999)

// RRN returns the retrieval reference number (field 37, 12 characters) of
// a charge reference: the reference itself when it is 1–12 letters and
// digits, else the first 12 hex digits of its SHA-256.
func RRN(reference string) string {
	if len(reference) > 0 && len(reference) <= 12 && isAlnum(reference) {
		return reference
	}
	sum := sha256.Sum256([]byte(reference))
	return strings.ToUpper(hex.EncodeToString(sum[:6]))
}

// TerminalID returns the field 41 terminal id of a gate: "G" and 7 base-36
// digits of SHA-256(gate). Distinct gates collide with probability about
// n²/1.6·10¹¹ (n = 10 000 gates: 6·10⁻⁴); the Charger refuses to send when
// two gates it has seen map to the same id, and a deployment can give its
// own mapping (ChargerOptions.Terminal).
func TerminalID(gate string) string {
	sum := sha256.Sum256([]byte(gate))
	v := uint64(sum[0])<<32 | uint64(sum[1])<<24 | uint64(sum[2])<<16 | uint64(sum[3])<<8 | uint64(sum[4])
	s := strings.ToUpper(strconv.FormatUint(v%78364164096, 36)) // 36^7
	return "G" + strings.Repeat("0", 7-len(s)) + s
}

func isAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z') {
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return len(s) > 0
}

// Merchant is who the link says the charges are for.
type Merchant struct {
	AcquirerID string // field 32, up to 11 digits
	ID         string // field 42, up to 15 characters
	Name       string // field 43, up to 40 characters (name, city, country)
	MCC        string // field 18; empty means MCCTransit
	Location   *time.Location
}

// elem is one data element to set.
type elem struct {
	id int
	v  string
}

// build packs a request into a message with the given STAN at now. It never
// puts card data into an error.
func (m Merchant) build(req Request, stan string, now time.Time) (*iso8583.Message, error) {
	if err := req.check(); err != nil {
		return nil, err
	}
	cur, err := CurrencyNumeric(req.Currency)
	if err != nil {
		return nil, err
	}
	f55, err := Field55(req.Card.EMV)
	if err != nil {
		return nil, err
	}
	mti := MTIFinancialRequest
	if req.Kind == KindAccountCheck {
		mti = MTIAuthRequest
	}
	msg := iso8583.NewMessage(Spec)
	msg.MTI(mti)
	for _, f := range append(m.elements(req, stan, now, cur), cardElements(req.Card)...) {
		if f.v == "" {
			continue
		}
		if err := msg.Field(f.id, f.v); err != nil {
			return nil, fmt.Errorf("%w: field %d", ErrRequest, f.id)
		}
	}
	if len(f55) > 0 {
		if err := msg.BinaryField(55, f55); err != nil {
			return nil, fmt.Errorf("%w: field 55", ErrRequest)
		}
	}
	return msg, nil
}

// check validates what build cannot encode, without quoting card data.
func (req Request) check() error {
	pan := req.Card.PAN
	switch {
	case len(pan) < 12 || len(pan) > 19 || !isDigits(pan):
		return fmt.Errorf("%w: PAN is not 12–19 digits", ErrRequest)
	case req.Amount < 0 || req.Amount > MaxAmount:
		return fmt.Errorf("%w: amount %d out of range", ErrRequest, req.Amount)
	case req.Kind == KindAccountCheck && req.Amount != 0:
		return fmt.Errorf("%w: an account check has amount 0", ErrRequest)
	case len(req.Terminal) == 0 || len(req.Terminal) > 8:
		return fmt.Errorf("%w: terminal id must be 1–8 characters", ErrRequest)
	}
	return nil
}

// elements are the request's data elements other than the card's.
func (m Merchant) elements(req Request, stan string, now time.Time, currency string) []elem {
	loc := m.Location
	if loc == nil {
		loc = time.UTC
	}
	local := req.LocalTime
	if local.IsZero() {
		local = now
	}
	local = local.In(loc)
	proc, cond := processingPurchase, conditionNormal
	switch req.Kind {
	case KindRefund:
		proc = processingRefund
	case KindAccountCheck:
		cond = conditionVerification
	}
	mcc := m.MCC
	if mcc == "" {
		mcc = MCCTransit
	}
	return []elem{
		{3, proc}, {4, fmt.Sprintf("%012d", req.Amount)},
		{7, now.UTC().Format("0102150405")}, {11, stan},
		{12, local.Format("150405")}, {13, local.Format("0102")},
		{18, mcc}, {22, entryContactlessChip}, {25, cond},
		{32, m.AcquirerID}, {37, RRN(req.Reference)}, {41, req.Terminal},
		{42, m.ID}, {43, m.Name}, {49, currency},
	}
}

// cardElements are fields 2, 14, 23 and 35 from the vault's card data;
// an expiry, PSN or track 2 that cannot be encoded is left out.
func cardElements(c tap.CardData) []elem {
	out := []elem{{2, c.PAN}}
	if e := c.Expiry; len(e) >= 4 && isDigits(e[:4]) {
		out = append(out, elem{14, e[:4]})
	}
	if p := c.PSN; len(p) > 0 && len(p) <= 3 && isDigits(p) {
		out = append(out, elem{23, zeroPad(p, 3)})
	}
	if t2, ok := track2(c.Track2); ok {
		out = append(out, elem{35, t2})
	}
	return out
}

// track2 converts the EMV track 2 equivalent data (tag 57: packed digits,
// separator D, padded with F) into field 35's characters: digits and "=".
func track2(b []byte) (string, bool) {
	if len(b) == 0 || len(b) > 19 {
		return "", false
	}
	out := make([]byte, 0, 2*len(b))
	for _, x := range b {
		for _, nib := range [2]byte{x >> 4, x & 0x0F} {
			switch {
			case nib <= 9:
				out = append(out, '0'+nib)
			case nib == 0x0D:
				out = append(out, '=')
			case nib == 0x0F:
				// padding
			default:
				return "", false
			}
		}
	}
	if len(out) > 37 {
		return "", false
	}
	return string(out), true
}

// Result is the acquirer's answer to a request.
type Result struct {
	Code     string // field 39
	AuthCode string // field 38, approvals only
	// MAC is Mastercard's merchant advice code (field 48 sub-element 84)
	// when the acquirer sent one.
	MAC  string
	STAN string // of the attempt that was answered
	RRN  string
	// Attempts counts the requests sent (1 when the first was answered).
	Attempts int
}

// Approved reports whether the request was approved.
func (r Result) Approved() bool { return IsApproval(r.Code) }

// IsApproval reports whether a response code approves: 00, 10 (partial),
// 11 (VIP) and 85 (no reason to decline, the answer to an account check).
func IsApproval(code string) bool {
	switch code {
	case "00", "10", "11", "85":
		return true
	}
	return false
}

// parseResponse reads the elements the client needs from an answer to a
// request sent with MTI want.
func parseResponse(msg *iso8583.Message, want string) (Result, error) {
	mti, err := msg.GetMTI()
	if err != nil || mti != responseMTI(want) {
		return Result{}, fmt.Errorf("%w: answer to %s has MTI %q", ErrMessage, want, mti)
	}
	var r Result
	r.Code, _ = msg.GetString(39)
	if len(r.Code) != 2 {
		return Result{}, fmt.Errorf("%w: %s without a response code", ErrMessage, mti)
	}
	r.STAN, _ = msg.GetString(11)
	r.RRN, _ = msg.GetString(37)
	r.AuthCode, _ = msg.GetString(38)
	r.AuthCode = strings.TrimRight(r.AuthCode, " ")
	if f48, _ := msg.GetString(48); f48 != "" {
		r.MAC = subElement(f48, "84")
	}
	return r, nil
}

// responseMTI is the MTI answering a request MTI (0100 → 0110; the repeat
// 0401 → 0410).
func responseMTI(req string) string {
	if len(req) != 4 {
		return ""
	}
	return req[:2] + "1" + "0"
}

// subElement finds a sub-element in field 48's format: 2-digit tag, 2-digit
// length, value; repeated.
func subElement(s, tag string) string {
	for len(s) >= 4 {
		n, err := strconv.Atoi(s[2:4])
		if err != nil || n < 0 || 4+n > len(s) {
			return ""
		}
		if s[:2] == tag {
			return s[4 : 4+n]
		}
		s = s[4+n:]
	}
	return ""
}

// originalData builds field 90 for a reversal: original MTI (4), STAN (6),
// transmission date and time (10), acquiring institution (11, zero-padded),
// forwarding institution (11 zeros).
func originalData(mti, stan, transmitted, acquirer string) string {
	return mti + stan + transmitted + zeroPad(acquirer, 11) + "00000000000"
}

// OriginalData is field 90 split into its parts.
type OriginalData struct {
	MTI, STAN, Transmitted, Acquirer string
}

// ParseOriginalData splits field 90.
func ParseOriginalData(s string) (OriginalData, error) {
	if len(s) != 42 || !isDigits(s) {
		return OriginalData{}, fmt.Errorf("%w: field 90 is not 42 digits", ErrMessage)
	}
	return OriginalData{MTI: s[:4], STAN: s[4:10], Transmitted: s[10:20], Acquirer: strings.TrimLeft(s[20:31], "0")}, nil
}

func zeroPad(s string, n int) string {
	if len(s) >= n {
		return s[len(s)-n:]
	}
	return strings.Repeat("0", n-len(s)) + s
}
