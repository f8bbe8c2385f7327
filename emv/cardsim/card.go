// Package cardsim is a software EMV contactless card personalised from a
// JSON profile, with real RSA keys and EMV Book 2 certificates from the test
// PKI of oda/odatest. Tests, the demo and the virtual reader use it; no
// production path does.
package cardsim

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync"

	"github.com/faregate/faregate/emv"
	"github.com/faregate/faregate/emv/tapdata"
	"github.com/faregate/faregate/emv/tlv"
)

// ErrRemoved is returned by Transmit after the card left the field (the
// RemoveAfter fault, or Remove). It matches emv.ErrCardRemoved.
var ErrRemoved = fmt.Errorf("cardsim: %w", emv.ErrCardRemoved)

// Options tune a card's behaviour beyond its profile.
type Options struct {
	// Rand is the card's randomness (ICC dynamic numbers, card
	// unpredictable numbers); nil means crypto/rand.
	Rand io.Reader
}

// Card is a personalised software card. It is safe for concurrent use, but
// like a real card it runs one transaction at a time.
type Card struct {
	mu      sync.Mutex
	profile *Profile
	apps    []*app
	atr     []byte
	rand    io.Reader

	removed  bool
	apdus    int
	selected *app
	gpoData  []byte // PDOL data of the current transaction
	gpoDone  bool
	pending  []byte // response data awaiting GET RESPONSE
	demanded bool   // DemandLe fault already fired
}

// Load reads a profile file and personalises a card from it.
func Load(name string, opts Options) (*Card, error) {
	p, err := LoadProfile(name)
	if err != nil {
		return nil, err
	}
	return New(p, opts)
}

// New personalises a card from a profile: it builds the records and the
// AFL, and certifies the card's keys under the profile's test PKI.
func New(p *Profile, opts Options) (*Card, error) {
	c := &Card{profile: p, rand: opts.Rand}
	if c.rand == nil {
		c.rand = rand.Reader
	}
	c.atr = []byte{0x3B, 0x80, 0x80, 0x01, 0x01}
	if p.ATR != "" {
		atr, err := hex.DecodeString(p.ATR)
		if err != nil || len(atr) < 2 || len(atr) > 33 {
			return nil, fmt.Errorf("cardsim: %s: atr must be 2 to 33 bytes of hex", p.Name)
		}
		c.atr = atr
	}
	for i := range p.Applications {
		a, err := personalise(p, &p.Applications[i])
		if err != nil {
			return nil, fmt.Errorf("cardsim: %s: %w", p.Name, err)
		}
		c.apps = append(c.apps, a)
	}
	return c, nil
}

// Profile returns the profile the card was personalised from.
func (c *Card) Profile() *Profile { return c.profile }

// ATR returns the card's answer to reset.
func (c *Card) ATR() []byte { return bytes.Clone(c.atr) }

// PowerOn starts a new session: nothing selected.
func (c *Card) PowerOn() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reset()
}

// PowerOff ends the session.
func (c *Card) PowerOff() { c.PowerOn() }

// Reset is a warm reset: a new session.
func (c *Card) Reset() { c.PowerOn() }

// Remove takes the card out of the field: Transmit fails with ErrRemoved
// until Present.
func (c *Card) Remove() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.removed = true
}

// Present puts the card back in the field with a fresh session; the
// RemoveAfter fault counts again from zero.
func (c *Card) Present() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.removed = false
	c.apdus = 0
	c.reset()
}

// Removed reports whether the card is out of the field.
func (c *Card) Removed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.removed
}

func (c *Card) reset() {
	c.selected, c.gpoData, c.gpoDone, c.pending = nil, nil, false, nil
}

// Transmit processes one command APDU and returns the response with its
// status word. It satisfies emv.Transceiver.
func (c *Card) Transmit(ctx context.Context, cmd []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.removed {
		return nil, ErrRemoved
	}
	c.apdus++
	if n := c.profile.Faults.RemoveAfter; n > 0 && c.apdus > n {
		c.removed = true
		return nil, ErrRemoved
	}
	return c.process(cmd), nil
}

var _ emv.Transceiver = (*Card)(nil)

// apdu is a parsed command.
type apdu struct {
	cla, ins, p1, p2 byte
	data             []byte
	le               int // -1: none
}

func parseAPDU(b []byte) (apdu, bool) {
	if len(b) < 4 {
		return apdu{}, false
	}
	a := apdu{cla: b[0], ins: b[1], p1: b[2], p2: b[3], le: -1}
	rest := b[4:]
	switch {
	case len(rest) == 0:
	case len(rest) == 1:
		a.le = int(rest[0])
	default:
		lc := int(rest[0])
		if lc == 0 || len(rest) < 1+lc || len(rest) > 2+lc {
			return apdu{}, false
		}
		a.data = rest[1 : 1+lc]
		if len(rest) == 2+lc {
			a.le = int(rest[1+lc])
		}
	}
	return a, true
}

func sw(w uint16) []byte { return []byte{byte(w >> 8), byte(w)} }

func (c *Card) process(raw []byte) []byte {
	cmd, ok := parseAPDU(raw)
	if !ok {
		return sw(0x6700)
	}
	if cmd.ins == 0xC0 {
		return c.getResponse(cmd)
	}
	c.pending = nil
	step, data, status := c.dispatch(cmd)
	if w, ok := c.profile.Faults.StatusWords[step]; ok {
		b, _ := hex.DecodeString(w) // checked when the profile loaded
		return b
	}
	if status != 0x9000 {
		return sw(status)
	}
	if c.profile.Faults.Malformed == step {
		data = malform(data)
	}
	if c.profile.Faults.DemandLe && !c.demanded && len(data) > 0 && len(data) < 256 && cmd.le != len(data) {
		c.demanded = true
		return sw(0x6C00 | uint16(len(data)))
	}
	if c.profile.Faults.ChainResponses && len(data) > 0 {
		c.pending = data
		return sw(0x6100 | uint16(min(len(data), 256)&0xFF))
	}
	return append(data, 0x90, 0x00)
}

// getResponse hands out data a 61xx announced.
func (c *Card) getResponse(cmd apdu) []byte {
	if len(c.pending) == 0 {
		return sw(0x6985)
	}
	n := cmd.le
	if n <= 0 {
		n = 256
	}
	n = min(n, len(c.pending))
	out := append([]byte(nil), c.pending[:n]...)
	c.pending = c.pending[n:]
	if len(c.pending) > 0 {
		return append(out, 0x61, byte(min(len(c.pending), 256)))
	}
	return append(out, 0x90, 0x00)
}

// malform replaces the length of the first data object with a 4-byte
// long-form length: the kind of bytes that crash naive BER-TLV decoders.
func malform(data []byte) []byte {
	tag, _, _, err := tlv.Split(data)
	if err != nil {
		return data
	}
	tl := len(tag) / 2
	_, n := lengthOf(data[tl:])
	out := append([]byte(nil), data[:tl]...)
	out = append(out, 0x84, 0xFF, 0xFF, 0xFF, 0xF0)
	return append(out, data[tl+n:]...)
}

func lengthOf(b []byte) (int, int) {
	if b[0] < 0x80 {
		return int(b[0]), 1
	}
	n := int(b[0] & 0x7F)
	l := 0
	for _, x := range b[1 : 1+n] {
		l = l<<8 | int(x)
	}
	return l, 1 + n
}

// dispatch runs a command and names its step for the fault switches.
func (c *Card) dispatch(cmd apdu) (step emv.Step, data []byte, status uint16) {
	switch cmd.ins {
	case 0xA4:
		if cmd.p1 != 0x04 {
			return emv.StepSelect, nil, 0x6A86
		}
		if bytes.Equal(cmd.data, emv.PPSEName) {
			if c.profile.Faults.NoPPSE {
				return emv.StepSelectPPSE, nil, 0x6A82
			}
			return emv.StepSelectPPSE, c.ppseFCI(), 0x9000
		}
		c.reset()
		for _, a := range c.apps {
			if bytes.Equal(cmd.data, a.spec.AID) {
				c.selected = a
				return emv.StepSelect, a.fci, 0x9000
			}
		}
		return emv.StepSelect, nil, 0x6A82
	case 0xA8:
		d, s := c.gpo(cmd)
		return emv.StepGPO, d, s
	case 0xB2:
		d, s := c.readRecord(cmd)
		return emv.StepReadRecord, d, s
	case 0xAE:
		d, s := c.generateAC(cmd)
		return emv.StepGenerateAC, d, s
	case 0x88:
		d, s := c.internalAuthenticate(cmd)
		return emv.StepInternalAuthenticate, d, s
	}
	return 0, nil, 0x6D00
}

func (c *Card) ppseFCI() []byte {
	var entries []tlv.TLV
	add := func(e PPSEEntry) {
		fields := []tlv.TLV{{Tag: "4F", Value: e.AID}}
		if e.Label != "" {
			fields = append(fields, tlv.TLV{Tag: "50", Value: []byte(e.Label)})
		}
		if e.Priority > 0 {
			fields = append(fields, tlv.TLV{Tag: "87", Value: []byte{byte(e.Priority)}})
		}
		if len(e.KernelID) > 0 {
			fields = append(fields, tlv.TLV{Tag: "9F2A", Value: e.KernelID})
		}
		entries = append(entries, tlv.TLV{Tag: "61", TLVs: fields})
	}
	for _, a := range c.apps {
		add(a.spec.PPSEEntry)
	}
	for _, e := range c.profile.ExtraPPSE {
		add(e)
	}
	return mustEncode(tlv.TLV{Tag: "6F", TLVs: []tlv.TLV{
		{Tag: "84", Value: emv.PPSEName},
		{Tag: "A5", TLVs: []tlv.TLV{{Tag: "BF0C", TLVs: entries}}},
	}})
}

func mustEncode(tlvs ...tlv.TLV) []byte {
	b, err := tlv.Encode(tlvs...)
	if err != nil {
		panic(fmt.Sprintf("cardsim: encoding own data: %v", err)) // personalisation checked the tags
	}
	return b
}

func (c *Card) gpo(cmd apdu) ([]byte, uint16) {
	a := c.selected
	if a == nil {
		return nil, 0x6985
	}
	if cmd.cla != 0x80 {
		return nil, 0x6E00
	}
	if c.gpoDone {
		return nil, 0x6985 // one GPO per selection
	}
	if len(cmd.data) < 2 || cmd.data[0] != 0x83 || int(cmd.data[1]) != len(cmd.data)-2 {
		return nil, 0x6700
	}
	pdolData := cmd.data[2:]
	if len(pdolData) != tlv.DOLLength(a.pdol) {
		return nil, 0x6700
	}
	c.gpoData = bytes.Clone(pdolData)
	c.gpoDone = true
	if a.spec.Flow == "emv" {
		if a.spec.GPOFormat == "80" {
			return mustEncode(tlv.TLV{Tag: "80", Value: append(bytes.Clone(a.aip), a.afl...)}), 0x9000
		}
		return mustEncode(tlv.TLV{Tag: "77", TLVs: []tlv.TLV{{Tag: "82", Value: a.aip}, {Tag: "94", Value: a.afl}}}), 0x9000
	}
	return c.qvsdc(a, pdolData)
}

// qvsdc answers GPO on kernels 3 and 7: an ARQC and, when the card does
// fDDA, a signature over the terminal's data.
func (c *Card) qvsdc(a *app, pdolData []byte) ([]byte, uint16) {
	term := dolValues(a.pdol, pdolData)
	a.atc++
	atc := binary.BigEndian.AppendUint16(nil, a.atc)
	objs := []tlv.TLV{
		{Tag: "82", Value: a.aip},
		{Tag: "94", Value: a.afl},
		{Tag: "9F36", Value: atc},
		{Tag: "9F26", Value: a.cryptogram(atc, pdolData)},
		{Tag: "9F27", Value: []byte{0x80}},
		{Tag: "9F10", Value: a.iad()},
	}
	for _, tag := range sortedKeys(a.spec.GPOData) {
		objs = append(objs, tlv.TLV{Tag: tag, Value: a.spec.GPOData[tag]})
	}
	if tapdata.AIP(a.aip).DDA() && a.iccKey != nil {
		cardUN := make([]byte, 4)
		if _, err := io.ReadFull(c.rand, cardUN); err != nil {
			return nil, 0x6F00
		}
		ctq := a.spec.GPOData["9F6C"]
		if len(ctq) != 2 {
			ctq = HexBytes{0x00, 0x00}
		}
		cardAuth := append(append([]byte{0x01}, cardUN...), ctq...)
		dyn, err := c.dynamicNumber(a, atc)
		if err != nil {
			return nil, 0x6F00
		}
		terminal := concat(term["9F37"], term["9F02"], term["5F2A"], cardAuth)
		format := byte(0x05)
		if a.spec.SDADFormat == "95" {
			format = 0x95
		}
		sdad, err := a.signDynamic(format, iccDynamicData(dyn), terminal)
		if err != nil {
			return nil, 0x6F00
		}
		objs = append(objs, tlv.TLV{Tag: "9F4B", Value: sdad}, tlv.TLV{Tag: "9F69", Value: cardAuth})
	}
	return mustEncode(tlv.TLV{Tag: "77", TLVs: objs}), 0x9000
}

func (c *Card) readRecord(cmd apdu) ([]byte, uint16) {
	a := c.selected
	if a == nil {
		return nil, 0x6985
	}
	if cmd.p2&0x07 != 0x04 {
		return nil, 0x6A86
	}
	r, ok := a.records[[2]int{int(cmd.p2 >> 3), int(cmd.p1)}]
	if !ok {
		return nil, 0x6A83
	}
	return bytes.Clone(r), 0x9000
}

func (c *Card) generateAC(cmd apdu) ([]byte, uint16) {
	a := c.selected
	if a == nil || !c.gpoDone || a.spec.Flow != "emv" {
		return nil, 0x6985
	}
	if cmd.cla != 0x80 {
		return nil, 0x6E00
	}
	if len(cmd.data) != tlv.DOLLength(a.cdol1) {
		return nil, 0x6700
	}
	c.gpoDone = false // one cryptogram per transaction
	cid := byte(0x80)
	if cmd.p1&0xC0 == 0x00 {
		cid = 0x00 // the terminal asked for a decline
	}
	a.atc++
	atc := binary.BigEndian.AppendUint16(nil, a.atc)
	ac := a.cryptogram(atc, cmd.data)
	cda := cmd.p1&0x10 != 0 && tapdata.AIP(a.aip).CDA() && cid != 0x00 && a.iccKey != nil
	if !cda {
		return mustEncode(tlv.TLV{Tag: "77", TLVs: []tlv.TLV{
			{Tag: "9F27", Value: []byte{cid}},
			{Tag: "9F36", Value: atc},
			{Tag: "9F26", Value: ac},
			{Tag: "9F10", Value: a.iad()},
		}}), 0x9000
	}
	// CDA (EMV Book 2 6.6): the AC travels inside the signature, bound to
	// the transaction by the Transaction Data Hash Code.
	head := []tlv.TLV{{Tag: "9F27", Value: []byte{cid}}, {Tag: "9F36", Value: atc}}
	tail := []tlv.TLV{{Tag: "9F10", Value: a.iad()}}
	h := newSHA1()
	h.Write(c.gpoData)
	h.Write(cmd.data)
	h.Write(mustEncode(head...))
	h.Write(mustEncode(tail...))
	tdhc := h.Sum(nil)
	dyn, err := c.dynamicNumber(a, atc)
	if err != nil {
		return nil, 0x6F00
	}
	iccData := concat(iccDynamicData(dyn), []byte{cid}, ac, tdhc)
	un := dolValues(a.cdol1, cmd.data)["9F37"]
	sdad, err := a.signDynamic(0x05, iccData, un)
	if err != nil {
		return nil, 0x6F00
	}
	objs := append(append(head, tlv.TLV{Tag: "9F4B", Value: sdad}), tail...)
	return mustEncode(tlv.TLV{Tag: "77", TLVs: objs}), 0x9000
}

func (c *Card) internalAuthenticate(cmd apdu) ([]byte, uint16) {
	a := c.selected
	if a == nil || a.iccKey == nil || !tapdata.AIP(a.aip).DDA() {
		return nil, 0x6985
	}
	if len(cmd.data) != tlv.DOLLength(a.ddol) {
		return nil, 0x6700
	}
	dyn, err := c.dynamicNumber(a, binary.BigEndian.AppendUint16(nil, a.atc))
	if err != nil {
		return nil, 0x6F00
	}
	sdad, err := a.signDynamic(0x05, iccDynamicData(dyn), cmd.data)
	if err != nil {
		return nil, 0x6F00
	}
	if a.spec.IAFormat == "77" {
		return mustEncode(tlv.TLV{Tag: "77", TLVs: []tlv.TLV{{Tag: "9F4B", Value: sdad}}}), 0x9000
	}
	return mustEncode(tlv.TLV{Tag: "80", Value: sdad}), 0x9000
}

// dynamicNumber is the ICC Dynamic Number: 8 random bytes, or the ATC.
func (c *Card) dynamicNumber(a *app, atc []byte) ([]byte, error) {
	if a.spec.DynamicNumber == "atc" {
		return bytes.Clone(atc), nil
	}
	n := make([]byte, 8)
	if _, err := io.ReadFull(c.rand, n); err != nil {
		return nil, err
	}
	return n, nil
}

// iccDynamicData is LDN | ICC Dynamic Number.
func iccDynamicData(n []byte) []byte { return append([]byte{byte(len(n))}, n...) }

// cryptogram is the card's application cryptogram. Real cards compute a
// MAC with a session key derived from the issuer master key; the software
// card uses HMAC-SHA-256 with a key derived from its PAN, which is as opaque
// to the gate and enough for an acquirer simulator to check.
func (a *app) cryptogram(atc, data []byte) []byte {
	m := hmac.New(sha256.New, a.acKey)
	m.Write(atc)
	m.Write(data)
	return m.Sum(nil)[:8]
}

func (a *app) iad() []byte {
	if len(a.spec.IAD) > 0 {
		return a.spec.IAD
	}
	return []byte{0x06, 0x01, 0x0A, 0x03, 0xA0, 0x00, 0x00}
}

// dolValues splits DOL data back into values by tag.
func dolValues(dol []tlv.DOLEntry, data []byte) map[string][]byte {
	out := make(map[string][]byte, len(dol))
	off := 0
	for _, e := range dol {
		if off+e.Length > len(data) {
			break
		}
		out[e.Tag] = data[off : off+e.Length]
		off += e.Length
	}
	return out
}

func concat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

var errNoKey = errors.New("no ICC key")

// LoadFS reads a profile from fsys and personalises a card from it.
func LoadFS(fsys fs.FS, name string, opts Options) (*Card, error) {
	p, err := LoadProfileFS(fsys, name)
	if err != nil {
		return nil, err
	}
	return New(p, opts)
}
