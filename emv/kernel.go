package emv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/faregate/faregate/emv/tapdata"
	"github.com/faregate/faregate/emv/tlv"
)

// Kernel runs the contactless flow of one tap. It is safe for concurrent use;
// each Tap has its own state.
type Kernel struct {
	cfg   Config
	fixed []fixedObject // terminal data that never changes; read-only
}

// NewKernel returns a kernel for the terminal configuration cfg.
func NewKernel(cfg Config) (*Kernel, error) {
	cfg.fillDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.Applications = slices.Clone(cfg.Applications)
	return &Kernel{cfg: cfg, fixed: fixedTerminalData(&cfg)}, nil
}

// Config returns the kernel's configuration with defaults filled in.
func (k *Kernel) Config() Config { return k.cfg }

// Timing is the time spent in one step of a tap, card time included.
type Timing struct {
	Step     Step          `json:"step"`
	Duration time.Duration `json:"duration_ns"`
}

// Cryptogram type from the Cryptogram Information Data (9F27).
type Cryptogram string

const (
	CryptogramAAC  Cryptogram = "AAC"
	CryptogramTC   Cryptogram = "TC"
	CryptogramARQC Cryptogram = "ARQC"
)

func cryptogramOf(cid byte) Cryptogram {
	switch cid & 0xC0 {
	case 0x40:
		return CryptogramTC
	case 0x80:
		return CryptogramARQC
	}
	return CryptogramAAC
}

// Tap is everything one tap produced. It holds the clear PAN and track data
// (in Data and Card): never log or store it whole; its LogValue is redacted.
type Tap struct {
	Application Application // the gate's configuration entry that matched
	AID         []byte      // the ADF name selected (may extend Application.AID)
	Label       string
	Kernel      byte
	Card        Card
	AIP         tapdata.AIP
	Cryptogram  Cryptogram
	// Data holds every primitive data object of the card (FCI, GPO,
	// records, GENERATE AC / INTERNAL AUTHENTICATE) and of the terminal,
	// keyed by upper-case hex tag. Values alias the card's responses and
	// the kernel's own data: read them, never modify them.
	Data    map[string][]byte
	Records []tapdata.Record
	// Command data the ODA signatures cover.
	PDOLData, CDOL1Data, DDOLData []byte
	// GenACResponse is the value of the GENERATE AC response template (77
	// content, or 80 content), when GENERATE AC was sent.
	GenACResponse []byte
	ODA           ODAOutcome
	Timings       []Timing
	Started       time.Time // transaction date and time, from Config.Now
	Duration      time.Duration
	Transcript    Transcript
}

// Field55 returns the ICC data for ISO 8583 DE 55: the Field55Tags present in
// the tap, BER-TLV encoded in order.
func (t *Tap) Field55() []byte {
	var out []byte
	for _, tag := range Field55Tags {
		v, ok := t.Data[tag]
		if !ok {
			continue
		}
		b, err := tlv.Encode(tlv.TLV{Tag: tag, Value: v})
		if err != nil {
			continue // only dictionary tags with card-bounded values: cannot fail
		}
		out = append(out, b...)
	}
	return out
}

// Reason classifies why a tap did not complete.
type Reason string

const (
	ReasonNotPaymentCard  Reason = "not_payment_card"
	ReasonNoApplication   Reason = "no_supported_application"
	ReasonCardError       Reason = "card_error"     // an unexpected status word
	ReasonMalformed       Reason = "malformed_data" // bytes that break the EMV rules
	ReasonCardRemoved     Reason = "card_removed"   // the card left the field
	ReasonCommunication   Reason = "communication"  // the reader failed
	ReasonCardDeclined    Reason = "card_declined"  // the card answered AAC
	ReasonMissingData     Reason = "missing_data"   // a mandatory data object is absent
	ReasonTerminalFailure Reason = "terminal_error"
)

// ErrCardRemoved is matched by transport errors meaning the card left the
// field in the middle of a tap. Readers and the software card wrap it.
var ErrCardRemoved = errors.New("emv: card removed")

// TapError says which step of a tap failed and why. Reason is stable for
// callers to act on; Err holds the cause (a *StatusError, a
// *tlv.SyntaxError, a transport error). It never holds card data.
type TapError struct {
	Step   Step
	Reason Reason
	Err    error
}

func (e *TapError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("emv: %s: %s", e.Step, e.Reason)
	}
	return fmt.Sprintf("emv: %s: %s: %v", e.Step, e.Reason, e.Err)
}

func (e *TapError) Unwrap() error { return e.Err }

// Torn reports whether the tap was interrupted by the card leaving or the
// reader failing, rather than by what the card said: the gate neither opens
// nor records such a tap.
func (e *TapError) Torn() bool {
	return e.Reason == ReasonCardRemoved || e.Reason == ReasonCommunication
}

func tapErr(step Step, reason Reason, err error) *TapError {
	return &TapError{Step: step, Reason: reason, Err: err}
}

// dolErr is a failure to build a command's DOL data: a DOL that breaks the
// rules, or on a replay a command the transcript does not hold.
func dolErr(step Step, err error) *TapError {
	if errors.Is(err, errNoAnswer) {
		return tapErr(step, ReasonCommunication, err)
	}
	return tapErr(step, ReasonMalformed, err)
}

// Tap runs one contactless transaction with card: application selection,
// processing, record reading, cryptogram and offline data authentication.
// The returned Tap is never nil: on error it holds what was gathered (the
// transcript, timings) for diagnosis. Errors are *TapError. An ODA failure
// is not an error; it is reported in Tap.ODA.
func (k *Kernel) Tap(ctx context.Context, card Transceiver) (*Tap, error) {
	t := new(Tap)
	return t, k.TapInto(ctx, card, t)
}

// TapInto is Tap writing into t, reusing its storage: a gate that handles
// one tap at a time and is done with the previous Tap before the next
// saves the allocations of a new one. Everything t held is cleared first.
func (k *Kernel) TapInto(ctx context.Context, card Transceiver, t *Tap) error {
	t.reset()
	t.Started = k.cfg.Now().In(k.cfg.Location)
	begin := time.Now()
	s := &session{ctx: ctx, card: card, record: k.cfg.Record, timings: t.Timings[:0], last: begin}
	err := k.run(s, t)
	t.Duration = s.last.Sub(begin)
	if err != nil {
		t.Duration = time.Since(begin)
	}
	t.Timings = s.timings
	t.Transcript = s.transcript
	return err
}

// reset clears t for a new tap, keeping its map and slices.
func (t *Tap) reset() {
	data, records, timings := t.Data, t.Records[:0], t.Timings[:0]
	if data == nil {
		data = make(map[string][]byte, 64)
	} else {
		clear(data)
	}
	*t = Tap{Data: data, Records: records, Timings: timings}
}

func (k *Kernel) run(s *session, t *Tap) error {
	cands, err := k.selectPPSE(s)
	if err != nil {
		return err
	}
	return k.process(s, t, cands)
}

// process runs a tap from the final selection of one of cands on.
func (k *Kernel) process(s *session, t *Tap, cands []candidate) error {
	if err := k.finalSelect(s, t, cands); err != nil {
		return err
	}
	if err := k.terminalData(t); err != nil {
		return err
	}
	cryptogramInGPO, err := k.processingOptions(s, t)
	if err != nil {
		return err
	}
	if err := k.readRecords(s, t); err != nil {
		return err
	}
	if err := t.identify(); err != nil {
		return err
	}
	if cryptogramInGPO && (t.Kernel == KernelVisa || t.Kernel == KernelUnionPay) {
		// qVSDC / qUICS: the cryptogram came with GPO; fDDA signs GPO data.
		if len(t.Data["9F27"]) != 1 || len(t.Data["9F26"]) != 8 || len(t.Data["9F36"]) != 2 {
			return tapErr(StepGPO, ReasonMissingData, errors.New("cryptogram without CID (9F27) or ATC (9F36), or of the wrong length"))
		}
		t.Cryptogram = cryptogramOf(t.Data["9F27"][0])
		if t.Cryptogram == CryptogramAAC {
			return tapErr(StepGPO, ReasonCardDeclined, nil)
		}
		k.authenticate(s, t, methodForQuick(t))
		return nil
	}
	return k.emvMode(s, t)
}

// emvMode is the flow of kernels that ask for the cryptogram with GENERATE
// AC: CDA when card and terminal support it, else DDA by INTERNAL
// AUTHENTICATE, else SDA (EMV Book 3 10.3).
func (k *Kernel) emvMode(s *session, t *Tap) error {
	method := methodForEMV(t.AIP, k.cfg.Capabilities)
	if method == tapdata.MethodDDA {
		ddol := t.Data["9F49"]
		if len(ddol) == 0 {
			ddol = defaultDDOL
		}
		var err error
		if t.DDOLData, err = s.dolData(t, insInternalAuthenticate, ddol); err != nil {
			return dolErr(StepInternalAuthenticate, err)
		}
		resp, err := s.exchange(StepInternalAuthenticate, InternalAuthenticate(t.DDOLData))
		if err != nil {
			return err
		}
		if err := t.absorbSignature(resp); err != nil {
			return tapErr(StepInternalAuthenticate, ReasonMalformed, err)
		}
	}
	cdol1, ok := t.Data["8C"]
	if !ok {
		return tapErr(StepGenerateAC, ReasonMissingData, errors.New("no CDOL1 (8C)"))
	}
	var err error
	if t.CDOL1Data, err = s.dolData(t, insGenerateAC, cdol1); err != nil {
		return dolErr(StepGenerateAC, err)
	}
	p1 := ACTypeARQC
	if method == tapdata.MethodCDA {
		p1 |= ACCDA
	}
	resp, err := s.exchange(StepGenerateAC, GenerateAC(p1, t.CDOL1Data))
	if err != nil {
		return err
	}
	if err := t.absorbGenAC(resp); err != nil {
		return tapErr(StepGenerateAC, ReasonMalformed, err)
	}
	if len(t.Data["9F27"]) != 1 {
		return tapErr(StepGenerateAC, ReasonMalformed, errors.New("CID (9F27) is not one byte"))
	}
	t.Cryptogram = cryptogramOf(t.Data["9F27"][0])
	if t.Cryptogram == CryptogramAAC {
		return tapErr(StepGenerateAC, ReasonCardDeclined, nil)
	}
	k.authenticate(s, t, method)
	return nil
}

// defaultDDOL is the terminal's DDOL for cards without 9F49: the
// unpredictable number.
var defaultDDOL = []byte{0x9F, 0x37, 0x04}

// candidate is a PPSE directory entry the gate supports.
type candidate struct {
	app      Application
	adf      []byte
	label    string
	priority int // 1 highest … 15, 16 = none
	order    int
}

func (k *Kernel) selectPPSE(s *session) ([]candidate, error) {
	resp, err := s.exchange(StepSelectPPSE, SelectByName(PPSEName))
	if err != nil {
		var te *TapError
		if errors.As(err, &te) && te.Reason == ReasonCardError {
			// 6A82 and friends: no contactless payment environment.
			te.Reason = ReasonNotPaymentCard
		}
		return nil, err
	}
	dir, ok, err := tlv.Lookup(resp, "BF0C")
	if err != nil {
		return nil, tapErr(StepSelectPPSE, ReasonMalformed, err)
	}
	if !ok {
		return nil, tapErr(StepSelectPPSE, ReasonNotPaymentCard, errors.New("no directory in PPSE FCI"))
	}
	var cands []candidate
	i := 0
	_ = tlv.Children(dir, func(tag string, entry []byte) error {
		i++
		if tag != "61" {
			return nil
		}
		if c, ok := k.match(entry); ok {
			c.order = i
			cands = append(cands, c)
		}
		return nil
	})
	if len(cands) == 0 {
		return nil, tapErr(StepSelectPPSE, ReasonNoApplication, nil)
	}
	slices.SortStableFunc(cands, func(a, b candidate) int { return a.priority - b.priority })
	return cands, nil
}

// match checks one directory entry against the gate's applications: the
// ADF name must start with a supported AID (partial selection), and the
// kernel the card asks for (9F2A) must be the one the gate runs that AID on.
func (k *Kernel) match(entry []byte) (candidate, bool) {
	var adf, kernelID []byte
	var label string
	priority := 16
	_ = tlv.Children(entry, func(tag string, v []byte) error {
		switch tag {
		case "4F":
			adf = v
		case "50":
			label = string(v)
		case "87":
			if len(v) == 1 && v[0]&0x0F != 0 {
				priority = int(v[0] & 0x0F)
			}
		case "9F2A":
			kernelID = v
		}
		return nil
	})
	if len(adf) < 5 || len(adf) > 16 {
		return candidate{}, false
	}
	for _, app := range k.cfg.Applications {
		if !bytes.HasPrefix(adf, app.AID) {
			continue
		}
		want := app.Kernel
		if len(kernelID) > 0 && kernelID[0] != 0 {
			if kernelID[0]&0xC0 != 0 {
				return candidate{}, false // domestic kernel: not supported here
			}
			if kernelID[0]&0x3F != want {
				return candidate{}, false
			}
		} else if d := defaultKernel(adf); d != 0 && d != want {
			return candidate{}, false
		}
		return candidate{app: app, adf: adf, label: label, priority: priority}, true
	}
	return candidate{}, false
}

// finalSelect selects the best candidate, falling back to the next one when
// the card refuses a selection.
func (k *Kernel) finalSelect(s *session, t *Tap, cands []candidate) error {
	var last error
	for _, c := range cands {
		resp, err := s.exchange(StepSelect, SelectByName(c.adf))
		if err != nil {
			var te *TapError
			if errors.As(err, &te) && te.Reason == ReasonCardError {
				last = err
				continue
			}
			return err
		}
		var df []byte
		if err := tlv.Each(resp, func(tag string, v []byte) error {
			switch {
			case tag == "84":
				df = v
			case isFCITag(tag):
				if _, dup := t.Data[tag]; !dup {
					t.Data[tag] = v
				}
			}
			return nil
		}); err != nil {
			return tapErr(StepSelect, ReasonMalformed, err)
		}
		if !bytes.Equal(df, c.adf) {
			return tapErr(StepSelect, ReasonMalformed, errors.New("FCI names another application"))
		}
		t.Data["84"] = df
		t.Application = c.app
		t.AID = c.adf
		t.Label = c.label
		t.Kernel = c.app.Kernel
		if lbl, ok := t.Data["50"]; ok && t.Label == "" {
			t.Label = string(lbl)
		}
		return nil
	}
	return last
}

// terminalData puts the terminal's data objects in the tap: the fixed ones
// built once by NewKernel, then the unpredictable number, date and time.
func (k *Kernel) terminalData(t *Tap) error {
	un := make([]byte, 4+3+3)
	r := k.cfg.Rand
	if r == nil {
		r = rand.Reader
	}
	if _, err := io.ReadFull(r, un[:4]); err != nil {
		return tapErr(StepTerminal, ReasonTerminalFailure, fmt.Errorf("unpredictable number: %w", err))
	}
	now := t.Started
	d := t.Data
	for _, o := range k.fixed {
		d[o.tag] = o.value
	}
	d["9F37"] = un[:4:4]
	d["9A"] = putBCD(un[4:7], uint64((now.Year()%100)*10000+int(now.Month())*100+now.Day()))
	d["9F21"] = putBCD(un[7:10], uint64(now.Hour()*10000+now.Minute()*100+now.Second()))
	return nil
}

// processingOptions sends GET PROCESSING OPTIONS with the PDOL data and
// absorbs the AIP, the AFL and (qVSDC) the cryptogram data.
// It reports whether the card sent its cryptogram with GPO (qVSDC).
func (k *Kernel) processingOptions(s *session, t *Tap) (cryptogram bool, err error) {
	t.PDOLData, err = s.dolData(t, insGPO, t.Data["9F38"])
	if err != nil {
		return false, dolErr(StepGPO, err)
	}
	if len(t.PDOLData) > 252 {
		return false, tapErr(StepGPO, ReasonMalformed, errors.New("PDOL asks for more than a command carries"))
	}
	resp, err := s.exchange(StepGPO, GetProcessingOptions(t.PDOLData))
	if err != nil {
		return false, err
	}
	tag, value, rest, err := tlv.Split(resp)
	if err != nil {
		return false, tapErr(StepGPO, ReasonMalformed, err)
	}
	if len(bytes.Trim(rest, "\x00")) != 0 {
		return false, tapErr(StepGPO, ReasonMalformed, errors.New("data after the response template"))
	}
	switch tag {
	case "80": // format 1: AIP | AFL
		if len(value) < 2 || (len(value)-2)%4 != 0 {
			return false, tapErr(StepGPO, ReasonMalformed, errors.New("format 1 response is not AIP and AFL"))
		}
		t.Data["82"] = value[:2]
		t.Data["94"] = value[2:]
	case "77":
		if err := t.absorb(value); err != nil {
			return false, tapErr(StepGPO, ReasonMalformed, err)
		}
	default:
		return false, tapErr(StepGPO, ReasonMalformed, fmt.Errorf("response template %s", tag))
	}
	aip, ok := t.Data["82"]
	if !ok || len(aip) != 2 {
		return false, tapErr(StepGPO, ReasonMissingData, errors.New("no AIP (82)"))
	}
	copy(t.AIP[:], aip)
	_, cryptogram = t.Data["9F26"]
	return cryptogram, nil
}

// readRecords reads every record the AFL names.
func (k *Kernel) readRecords(s *session, t *Tap) error {
	var room [8]tapdata.AFLEntry
	afl, err := tapdata.AppendAFL(room[:0], t.Data["94"])
	if err != nil {
		return tapErr(StepReadRecord, ReasonMalformed, err)
	}
	for _, e := range afl {
		for rec := e.First; rec <= e.Last; rec++ {
			resp, err := s.exchange(StepReadRecord, ReadRecord(byte(e.SFI), byte(rec)))
			if err != nil {
				return err
			}
			r := tapdata.Record{SFI: e.SFI, Number: rec, Data: resp, ODA: e.Flagged(rec)}
			t.Records = append(t.Records, r)
			if e.SFI > 10 {
				continue // proprietary format outside SFI 1–10: not parsed
			}
			tag, value, rest, err := tlv.Split(resp)
			if err != nil {
				return tapErr(StepReadRecord, ReasonMalformed, err)
			}
			if tag != "70" || len(bytes.Trim(rest, "\x00")) != 0 {
				if r.ODA {
					continue // ODA fails on it (EMV Book 3 10.3); nothing to read
				}
				return tapErr(StepReadRecord, ReasonMalformed, errors.New("record is not template 70"))
			}
			if err := t.absorb(value); err != nil {
				return tapErr(StepReadRecord, ReasonMalformed, err)
			}
		}
	}
	return nil
}

// absorb checks b and adds its primitive data objects to the tap. A card
// data object that appears twice (other than the FCI's) is refused (EMV
// Book 3 7.5). A card object with the tag of terminal data is dropped: the
// terminal's value (the unpredictable number ODA depends on, above all)
// always stands, and schemes reuse tags — Mastercard mag-stripe records
// carry 9F66 and 9F6C, which Visa defines as terminal data.
func (t *Tap) absorb(b []byte) error {
	return tlv.Each(b, func(tag string, v []byte) error {
		if isTerminalTag(tag) {
			return nil
		}
		if _, dup := t.Data[tag]; dup && !isFCITag(tag) {
			return fmt.Errorf("data object %s appears twice", tag)
		}
		t.Data[tag] = v
		return nil
	})
}

// absorbSignature takes the INTERNAL AUTHENTICATE response: format 1 (80)
// is the bare SDAD, format 2 (77) holds 9F4B.
func (t *Tap) absorbSignature(resp []byte) error {
	tag, value, _, err := tlv.Split(resp)
	if err != nil {
		return err
	}
	switch tag {
	case "80":
		t.Data["9F4B"] = value
		return nil
	case "77":
		sig, ok, err := tlv.Lookup(value, "9F4B")
		if err != nil {
			return err
		}
		if !ok {
			return errors.New("no SDAD (9F4B) in response")
		}
		t.Data["9F4B"] = sig
		return nil
	}
	return fmt.Errorf("response template %s", tag)
}

// absorbGenAC takes the GENERATE AC response: format 1 (80) is CID | ATC |
// AC | IAD; format 2 (77) holds data objects, with 9F4B under CDA.
func (t *Tap) absorbGenAC(resp []byte) error {
	tag, value, _, err := tlv.Split(resp)
	if err != nil {
		return err
	}
	t.GenACResponse = value
	switch tag {
	case "80":
		if len(value) < 11 {
			return errors.New("format 1 GENERATE AC response too short")
		}
		t.Data["9F27"] = value[:1]
		t.Data["9F36"] = value[1:3]
		t.Data["9F26"] = value[3:11]
		if len(value) > 11 {
			t.Data["9F10"] = value[11:]
		}
		return nil
	case "77":
		if err := tlv.Each(value, func(tag string, v []byte) error {
			if !isTerminalTag(tag) {
				t.Data[tag] = v
			}
			return nil
		}); err != nil {
			return err
		}
		if _, ok := t.Data["9F27"]; !ok {
			return errors.New("no CID (9F27) in response")
		}
		return nil
	}
	return fmt.Errorf("response template %s", tag)
}

// identify fills Card from 5A, 5F34 and 5F24, or from track 2 (57) when the
// card does not send 5A, and checks that both agree when it sends both.
func (t *Tap) identify() error {
	var pan PAN
	var expiry string
	if v, ok := t.Data["5A"]; ok {
		p, err := parsePAN(v)
		if err != nil {
			return tapErr(StepReadRecord, ReasonMalformed, err)
		}
		pan = p
	}
	if v, ok := t.Data["57"]; ok {
		p, exp, err := parseTrack2(v)
		if err != nil {
			return tapErr(StepReadRecord, ReasonMalformed, err)
		}
		if pan == "" {
			pan = p
		} else if p != pan {
			return tapErr(StepReadRecord, ReasonMalformed, errors.New("track 2 and 5A name different PANs"))
		}
		expiry = exp + "31"
	}
	if pan == "" {
		return tapErr(StepReadRecord, ReasonMissingData, errors.New("no PAN (5A or 57)"))
	}
	if v, ok := t.Data["5F24"]; ok {
		if len(v) != 3 {
			return tapErr(StepReadRecord, ReasonMalformed, errors.New("expiry date (5F24) is not YYMMDD"))
		}
		expiry = hex.EncodeToString(v)
	}
	if !validYYMMDD(expiry) {
		return tapErr(StepReadRecord, ReasonMissingData, errors.New("no valid expiry date"))
	}
	psn := "00"
	if v, ok := t.Data["5F34"]; ok {
		if len(v) != 1 || v[0]>>4 > 9 || v[0]&0x0F > 9 {
			return tapErr(StepReadRecord, ReasonMalformed, errors.New("PAN sequence number (5F34) is not 2 digits"))
		}
		psn = hex.EncodeToString(v)
	}
	t.Card = Card{PAN: pan, PSN: psn, Expiry: expiry}
	return nil
}

func validYYMMDD(s string) bool {
	if len(s) != 6 {
		return false
	}
	for i := range s {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	mm := (s[2]-'0')*10 + s[3] - '0'
	dd := (s[4]-'0')*10 + s[5] - '0'
	return mm >= 1 && mm <= 12 && dd >= 1 && dd <= 31
}

// Expired reports whether the card's expiry date (YYMMDD, valid through that
// day) is before the transaction date.
func (t *Tap) Expired() bool {
	if len(t.Card.Expiry) != 6 {
		return true
	}
	y := 2000 + int(t.Card.Expiry[0]-'0')*10 + int(t.Card.Expiry[1]-'0')
	m := int(t.Card.Expiry[2]-'0')*10 + int(t.Card.Expiry[3]-'0')
	d := int(t.Card.Expiry[4]-'0')*10 + int(t.Card.Expiry[5]-'0')
	last := time.Date(y, time.Month(m)+1, 0, 0, 0, 0, 0, time.UTC).Day()
	d = min(d, last)
	ty, tm, td := t.Started.Date()
	return y*10000+m*100+d < ty*10000+int(tm)*100+td
}

func (t *Tap) lookup(tag string) ([]byte, bool) {
	v, ok := t.Data[tag]
	return v, ok
}

// LogValue logs a tap without card data: scheme, AID, masked PAN, outcome.
func (t *Tap) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("scheme", string(t.Application.Scheme)),
		slog.String("aid", fmt.Sprintf("%X", t.AID)),
		slog.String("pan", t.Card.PAN.Masked()),
		slog.String("cryptogram", string(t.Cryptogram)),
		slog.String("oda", string(t.ODA.Method)),
		slog.Bool("oda_ok", t.ODA.OK),
		slog.Duration("duration", t.Duration),
	)
}
