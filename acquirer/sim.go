package acquirer

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/faregate/faregate/capping"
	"github.com/faregate/faregate/rider"
	"github.com/moov-io/iso8583"
)

// Rules configure the simulated acquirer (faregate acquirer-sim --rules).
// The first rule that matches a request decides it; a request no rule
// matches gets Default ("00" when empty).
type Rules struct {
	// TokenKey is the agency's token key (hex) so rules can name rider
	// tokens; without it only PAN ranges match.
	TokenKey string `json:"token_key,omitempty"`
	Default  string `json:"default,omitempty"`
	Rules    []Rule `json:"rules,omitempty"`
}

// Rule is one line of the simulator's behaviour.
type Rule struct {
	Name string `json:"name,omitempty"`
	// Match: every condition given must hold.
	MTI       []string      `json:"mti,omitempty"`    // "0100", "0200", "0400" (also matches 0401), "0800"
	Tokens    []rider.Token `json:"tokens,omitempty"` // needs Rules.TokenKey
	PANRanges []PANRange    `json:"pan_ranges,omitempty"`
	MinAmount *int64        `json:"min_amount,omitempty"` // minor units, inclusive
	MaxAmount *int64        `json:"max_amount,omitempty"`
	// Times limits the rule to its first Times matches (0: always).
	Times int `json:"times,omitempty"`
	// Effect.
	ResponseCode string   `json:"response_code,omitempty"` // default: Rules.Default
	MAC          string   `json:"mac,omitempty"`           // Mastercard merchant advice code, field 48 SE 84
	Latency      Duration `json:"latency,omitempty"`       // before answering
	// Drop: process the request (book it in the ledger) but never answer.
	Drop bool `json:"drop,omitempty"`
	// Cut: process the request, write the first half of the answer, then
	// close the connection.
	Cut bool `json:"cut,omitempty"`
}

// PANRange matches PANs whose first len(From) digits lie in [From, To].
type PANRange struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Duration is a time.Duration written as "150ms" in JSON.
type Duration time.Duration

func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// ErrRules: a rules file is not valid.
var ErrRules = errors.New("acquirer: invalid simulator rules")

// ParseRules reads rules as JSON, refusing unknown fields.
func ParseRules(r io.Reader) (Rules, error) {
	var rs Rules
	dec := json.NewDecoder(io.LimitReader(r, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rs); err != nil {
		return Rules{}, fmt.Errorf("%w: %w", ErrRules, err)
	}
	if _, err := hex.DecodeString(rs.TokenKey); err != nil {
		return Rules{}, fmt.Errorf("%w: token_key is not hex", ErrRules)
	}
	for i, r := range rs.Rules {
		if r.ResponseCode != "" && len(r.ResponseCode) != 2 {
			return Rules{}, fmt.Errorf("%w: rule %d: response_code must be 2 characters", ErrRules, i)
		}
		if len(r.Tokens) > 0 && rs.TokenKey == "" {
			return Rules{}, fmt.Errorf("%w: rule %d names tokens but there is no token_key", ErrRules, i)
		}
	}
	return rs, nil
}

// LedgerEntry is one line of the simulator's ledger: a message it answered
// (or processed and deliberately did not answer).
type LedgerEntry struct {
	Time         time.Time      `json:"time"`
	MTI          string         `json:"mti"` // of the request
	STAN         string         `json:"stan"`
	Amount       capping.Amount `json:"amount"` // field 4, minor units
	Currency     string         `json:"currency,omitempty"`
	MaskedPAN    string         `json:"masked_pan,omitempty"`
	Token        *rider.Token   `json:"token,omitempty"` // when the rules have a token key
	ResponseCode string         `json:"response_code"`
	Processing   string         `json:"processing_code,omitempty"`
	Terminal     string         `json:"terminal,omitempty"`
	RRN          string         `json:"rrn,omitempty"`
	Transmission string         `json:"transmission,omitempty"` // field 7
	// OriginalSTAN and OriginalTransmission name the request a reversal
	// undoes (field 90).
	OriginalSTAN         string `json:"original_stan,omitempty"`
	OriginalTransmission string `json:"original_transmission,omitempty"`
	// Effect is the money this message moved from the cardholder: +amount
	// for an approved charge, -amount for an approved refund, minus the
	// original's effect for a reversal that undid it, else 0. The sum of
	// Effect over a ledger is what the acquirer holds.
	Effect capping.Amount `json:"effect"`
	// Network is field 70 of a network management message (001 sign-on,
	// 002 sign-off, 301 echo).
	Network   string `json:"network,omitempty"`
	Dropped   bool   `json:"dropped,omitempty"`   // processed, not answered (or cut)
	Duplicate bool   `json:"duplicate,omitempty"` // a retransmission answered again
}

// ReadLedger parses a ledger (JSON lines).
func ReadLedger(r io.Reader) ([]LedgerEntry, error) {
	var out []LedgerEntry
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		if len(strings.TrimSpace(sc.Text())) == 0 {
			continue
		}
		var e LedgerEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("acquirer: ledger line %d: %w", n, err)
		}
		out = append(out, e)
	}
	return out, sc.Err()
}

// HostOptions configure a Host.
type HostOptions struct {
	// Replay is the ledger of an earlier run of the host: its approvals
	// and reversals are restored, so a restarted simulator still reverses
	// what it took before.
	Replay []LedgerEntry
	Now    func() time.Time
}

type txnKey struct{ terminal, stan, transmitted string }

type txn struct {
	effect   capping.Amount
	reversed bool
}

// Host is a simulated acquirer host on Spec. It answers sign-on, echo and
// sign-off, decides 0100 and 0200 by its rules, undoes what a reversal
// names, answers a retransmission (same terminal, STAN and transmission
// time) with its first answer without booking it again, and appends every
// message to its ledger before answering.
type Host struct {
	rules    Rules
	tokenKey []byte
	now      func() time.Time

	mu        sync.Mutex // guards the fields below and the ledger
	ledger    *bufio.Writer
	ledgerErr error
	txns      map[txnKey]*txn
	answered  map[txnKey][]byte // packed answers, for retransmissions
	ansRing   []txnKey          // answered's keys, oldest first evicted
	ansNext   int
	tombstone map[txnKey]bool // reversed before the original arrived
	matches   []int

	connMu sync.Mutex
	conns  map[net.Conn]struct{}
	ln     net.Listener
	closed bool
	wg     sync.WaitGroup
}

// NewHost returns a host deciding by rules and appending to ledger.
func NewHost(rules Rules, ledger io.Writer, o HostOptions) (*Host, error) {
	key, err := hex.DecodeString(rules.TokenKey)
	if err != nil {
		return nil, fmt.Errorf("%w: token_key is not hex", ErrRules)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	h := &Host{
		rules: rules, tokenKey: key, now: o.Now, ledger: bufio.NewWriterSize(ledger, 64<<10),
		txns: map[txnKey]*txn{}, answered: map[txnKey][]byte{}, tombstone: map[txnKey]bool{},
		matches: make([]int, len(rules.Rules)), conns: map[net.Conn]struct{}{},
	}
	for _, e := range o.Replay {
		switch e.MTI {
		case MTIAuthRequest, MTIFinancialRequest:
			if !e.Duplicate {
				h.txns[txnKey{e.Terminal, e.STAN, e.Transmission}] = &txn{effect: e.Effect}
			}
		case MTIReversalRequest, MTIReversalRepeat:
			k := txnKey{e.Terminal, e.OriginalSTAN, e.OriginalTransmission}
			if t, ok := h.txns[k]; ok {
				t.reversed = true
			} else {
				h.tombstone[k] = true
			}
		}
	}
	return h, nil
}

// Serve accepts connections on ln until Close.
func (h *Host) Serve(ln net.Listener) error {
	h.connMu.Lock()
	if h.closed {
		h.connMu.Unlock()
		return net.ErrClosed
	}
	h.ln = ln
	h.connMu.Unlock()
	for {
		c, err := ln.Accept()
		if err != nil {
			h.connMu.Lock()
			closed := h.closed
			h.connMu.Unlock()
			if closed {
				return nil
			}
			return err
		}
		h.connMu.Lock()
		if h.closed {
			h.connMu.Unlock()
			c.Close()
			return nil
		}
		h.conns[c] = struct{}{}
		h.wg.Add(1)
		h.connMu.Unlock()
		go h.serveConn(c)
	}
}

// Close stops accepting, cuts every connection, waits for them and
// returns the first error writing the ledger.
func (h *Host) Close() error {
	h.connMu.Lock()
	h.closed = true
	if h.ln != nil {
		h.ln.Close()
	}
	for c := range h.conns {
		c.Close()
	}
	h.connMu.Unlock()
	h.wg.Wait()
	h.flush()
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ledgerErr
}

// flush writes the buffered ledger lines: every answer waits for it, so a
// line is in the ledger before its answer leaves, and under load one write
// carries the lines of many requests (group commit).
func (h *Host) flush() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ledger.Buffered() == 0 {
		return
	}
	if err := h.ledger.Flush(); err != nil && h.ledgerErr == nil {
		h.ledgerErr = fmt.Errorf("acquirer: ledger: %w", err)
	}
}

func (h *Host) serveConn(c net.Conn) {
	defer h.wg.Done()
	defer func() {
		h.connMu.Lock()
		delete(h.conns, c)
		h.connMu.Unlock()
		c.Close()
	}()
	var wmu sync.Mutex
	var pending sync.WaitGroup
	defer pending.Wait()
	r := bufio.NewReader(c)
	for {
		n, err := ReadLength(r)
		if err != nil {
			return
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(r, b); err != nil {
			return
		}
		pending.Add(1)
		go func() {
			defer pending.Done()
			out, rule := h.handle(b)
			h.flush()
			if out == nil {
				return
			}
			if rule.Latency > 0 {
				time.Sleep(time.Duration(rule.Latency))
			}
			wmu.Lock()
			defer wmu.Unlock()
			if rule.Cut {
				frame := append([]byte{byte(len(out) >> 8), byte(len(out))}, out[:len(out)/2]...)
				c.Write(frame)
				c.Close()
				return
			}
			if rule.Drop {
				return
			}
			frame := make([]byte, 2+len(out))
			frame[0], frame[1] = byte(len(out)>>8), byte(len(out))
			copy(frame[2:], out)
			c.Write(frame)
		}()
	}
}

// handle decides one packed request and returns its packed answer (nil:
// no answer at all) and the rule that applied.
func (h *Host) handle(b []byte) ([]byte, Rule) {
	req, err := Unpack(b)
	if err != nil {
		return nil, Rule{}
	}
	mti, _ := req.GetMTI()
	switch mti {
	case MTINetworkRequest:
		e := h.entry(req, mti)
		e.ResponseCode = "00"
		e.Network, _ = req.GetString(70)
		h.mu.Lock()
		h.append(e)
		h.mu.Unlock()
		resp := answer(req, MTINetworkResponse, "00", 7, 11, 70)
		out, _ := resp.Pack()
		return out, Rule{}
	case MTIAuthRequest, MTIFinancialRequest:
		return h.authorize(req, mti)
	case MTIReversalRequest, MTIReversalRepeat:
		return h.reverse(req, mti)
	}
	return nil, Rule{}
}

func answer(req *iso8583.Message, mti, code string, echo ...int) *iso8583.Message {
	resp := iso8583.NewMessage(Spec)
	resp.MTI(mti)
	for _, id := range echo {
		if v, err := req.GetString(id); err == nil && v != "" {
			_ = resp.Field(id, v)
		}
	}
	_ = resp.Field(39, code)
	return resp
}

func (h *Host) entry(req *iso8583.Message, mti string) LedgerEntry {
	e := LedgerEntry{Time: h.now().UTC(), MTI: mti}
	e.STAN, _ = req.GetString(11)
	amt, _ := req.GetString(4)
	if v, err := strconv.ParseInt(amt, 10, 64); err == nil {
		e.Amount = capping.Amount(v)
	}
	if n, _ := req.GetString(49); n != "" {
		if c, err := CurrencyFromNumeric(n); err == nil {
			e.Currency = c.Code
		}
	}
	e.Processing, _ = req.GetString(3)
	e.Terminal, _ = req.GetString(41)
	e.Terminal = strings.TrimRight(e.Terminal, " ")
	e.RRN, _ = req.GetString(37)
	e.RRN = strings.TrimRight(e.RRN, " ")
	e.Transmission, _ = req.GetString(7)
	return e
}

func (h *Host) authorize(req *iso8583.Message, mti string) ([]byte, Rule) {
	e := h.entry(req, mti)
	pan, _ := req.GetString(2)
	psn, _ := req.GetString(23)
	e.MaskedPAN = MaskPAN(pan)
	var tok rider.Token
	if len(h.tokenKey) > 0 && pan != "" {
		if psn == "" {
			psn = "00"
		}
		tok = rider.NewToken(h.tokenKey, pan, psn[max(0, len(psn)-2):])
		e.Token = &tok
	}
	k := txnKey{e.Terminal, e.STAN, e.Transmission}

	h.mu.Lock()
	defer h.mu.Unlock()
	if out, ok := h.answered[k]; ok {
		e.Duplicate = true
		e.ResponseCode = "  "
		if m, err := Unpack(out); err == nil {
			e.ResponseCode, _ = m.GetString(39)
		}
		h.append(e)
		return out, Rule{}
	}
	rule := h.match(mti, pan, tok, e.Amount)
	code := rule.ResponseCode
	if code == "" {
		code = h.rules.Default
	}
	if code == "" {
		code = "00"
	}
	if h.tombstone[k] {
		code = "12" // its reversal came first: never take it
	}
	e.ResponseCode = code
	if IsApproval(code) && mti == MTIFinancialRequest {
		e.Effect = e.Amount
		if e.Processing == processingRefund {
			e.Effect = -e.Amount
		}
	}
	h.txns[k] = &txn{effect: e.Effect}
	resp := answer(req, responseMTI(mti), code, 3, 4, 7, 11, 37, 41, 49)
	if IsApproval(code) {
		_ = resp.Field(38, authCode(e.STAN))
	}
	if rule.MAC != "" {
		_ = resp.Field(48, "8402"+rule.MAC)
	}
	out, err := resp.Pack()
	if err != nil {
		return nil, rule
	}
	h.remember(k, out)
	e.Dropped = rule.Drop || rule.Cut
	h.append(e)
	return out, rule
}

func authCode(stan string) string {
	return "A" + stan[max(0, len(stan)-5):]
}

func (h *Host) reverse(req *iso8583.Message, mti string) ([]byte, Rule) {
	e := h.entry(req, mti)
	f90, _ := req.GetString(90)
	od, err := ParseOriginalData(f90)
	code := "30" // format error
	h.mu.Lock()
	defer h.mu.Unlock()
	rule := h.match(mti, "", rider.Token{}, e.Amount)
	if err == nil {
		e.OriginalSTAN, e.OriginalTransmission = od.STAN, od.Transmitted
		k := txnKey{e.Terminal, od.STAN, od.Transmitted}
		switch t, ok := h.txns[k]; {
		case !ok:
			h.tombstone[k] = true
			code = "25" // unable to locate the original: nothing to undo
		case t.reversed:
			code = "00"
		default:
			t.reversed = true
			e.Effect = -t.effect
			code = "00"
		}
	}
	e.ResponseCode = code
	e.Dropped = rule.Drop || rule.Cut
	h.append(e)
	resp := answer(req, MTIReversalResponse, code, 3, 4, 7, 11, 37, 41, 49, 90)
	out, err := resp.Pack()
	if err != nil {
		return nil, rule
	}
	return out, rule
}

// match returns the first rule matching, counting its use. Callers hold mu.
func (h *Host) match(mti, pan string, tok rider.Token, amount capping.Amount) Rule {
	for i, r := range h.rules.Rules {
		if !r.matches(mti, pan, tok, amount) {
			continue
		}
		if r.Times > 0 && h.matches[i] >= r.Times {
			continue
		}
		h.matches[i]++
		return r
	}
	return Rule{}
}

func (r Rule) matches(mti, pan string, tok rider.Token, amount capping.Amount) bool {
	if len(r.MTI) > 0 {
		ok := false
		for _, m := range r.MTI {
			if m == mti || (m == MTIReversalRequest && mti == MTIReversalRepeat) {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	if len(r.Tokens) > 0 {
		ok := false
		for _, t := range r.Tokens {
			if t == tok && !tok.IsZero() {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	if len(r.PANRanges) > 0 {
		ok := false
		for _, pr := range r.PANRanges {
			n := len(pr.From)
			if n > 0 && len(pan) >= n && pan[:n] >= pr.From && pan[:n] <= pr.To {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	if r.MinAmount != nil && int64(amount) < *r.MinAmount {
		return false
	}
	if r.MaxAmount != nil && int64(amount) > *r.MaxAmount {
		return false
	}
	return true
}

// append writes one ledger line. Callers hold mu.
func (h *Host) append(e LedgerEntry) {
	b, err := json.Marshal(e)
	if err != nil {
		return
	}
	b = append(b, '\n')
	if _, err := h.ledger.Write(b); err != nil && h.ledgerErr == nil {
		h.ledgerErr = fmt.Errorf("acquirer: ledger: %w", err)
	}
}

// maxAnswered bounds the answers kept for retransmissions: a retransmission
// comes within seconds, and a simulator that runs for days must not grow
// without end.
const maxAnswered = 1 << 17

// remember keeps an answer for retransmissions, evicting the oldest past
// maxAnswered. Callers hold mu.
func (h *Host) remember(k txnKey, out []byte) {
	if len(h.ansRing) < maxAnswered {
		h.ansRing = append(h.ansRing, k)
	} else {
		delete(h.answered, h.ansRing[h.ansNext])
		h.ansRing[h.ansNext] = k
		h.ansNext = (h.ansNext + 1) % maxAnswered
	}
	h.answered[k] = out
}
