package oda

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/faregate/faregate/emv/tapdata"
	"github.com/faregate/faregate/emv/tlv"
)

// ErrInput is matched (errors.Is) by every error of ParseInputJSON and
// ParseTranscriptJSON: the file cannot be used as verification input.
var ErrInput = errors.New("oda: unusable input")

func inputErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInput}, args...)...)
}

// inputJSON is the `faregate oda verify --input` format.
type inputJSON struct {
	RID           string            `json:"rid"`
	AID           string            `json:"aid"`
	Date          string            `json:"date"`
	Method        string            `json:"method"`
	Data          map[string]string `json:"data"`
	Records       []recordJSON      `json:"records"`
	StaticData    *string           `json:"static_data"`
	DDOLData      string            `json:"ddol_data"`
	PDOLData      string            `json:"pdol_data"`
	CDOL1Data     string            `json:"cdol1_data"`
	GenACResponse string            `json:"gen_ac_response"`
	Comment       any               `json:"comment"` // free text (a vector's source); ignored
}

type recordJSON struct {
	SFI      int    `json:"sfi"`
	Record   int    `json:"record"`
	Response string `json:"response"`
}

// ParseInputJSON builds an Input from the `faregate oda verify --input`
// JSON format:
//
//	{"rid" or "aid": HEX, "date": "YYYY-MM-DD", "method": "auto|SDA|DDA|fDDA|CDA",
//	 "data": {TAG: HEX}, "records": [{"sfi": N, "record": N, "response": HEX}],
//	 "static_data": HEX, "ddol_data": HEX, "pdol_data": HEX, "cdol1_data": HEX,
//	 "gen_ac_response": HEX, "comment": "…"}
//
// Tags are hex, any case. A data object given as "" is present with zero
// length. A record response may end with the status word 9000, which is
// dropped when it follows one complete data object. "static_data", when
// present (even ""), is used verbatim. Without "date" the transaction date
// is 9A from "data" when present, else zero (the caller supplies it).
// Unknown fields are refused. Errors match ErrInput.
func ParseInputJSON(data []byte) (*Input, error) {
	var j inputJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return nil, inputErr("%w", err)
	}
	if dec.More() {
		return nil, inputErr("trailing data after the input object")
	}
	in := &Input{Data: make(map[string][]byte, len(j.Data))}
	var err error
	switch {
	case j.RID != "" && j.AID != "":
		return nil, inputErr(`give "rid" or "aid", not both`)
	case j.RID != "":
		if in.RID, err = hexField("rid", j.RID); err != nil {
			return nil, err
		}
		if len(in.RID) != 5 {
			return nil, inputErr("rid: %d bytes, want 5", len(in.RID))
		}
	case j.AID != "":
		if in.RID, err = hexField("aid", j.AID); err != nil {
			return nil, err
		}
		if len(in.RID) < 5 || len(in.RID) > 16 {
			return nil, inputErr("aid: %d bytes, want 5 to 16", len(in.RID))
		}
		in.RID = in.RID[:5]
	default:
		return nil, inputErr(`"rid" or "aid" is required`)
	}
	m, ok := tapdata.ParseMethod(j.Method)
	if !ok {
		return nil, inputErr("method %q: want auto, SDA, DDA, fDDA or CDA", j.Method)
	}
	in.Method = m
	for tag, v := range j.Data {
		t, err := normTag(tag)
		if err != nil {
			return nil, err
		}
		if _, dup := in.Data[t]; dup {
			return nil, inputErr("data: tag %s given twice", t)
		}
		if in.Data[t], err = hexField("data "+t, v); err != nil {
			return nil, err
		}
	}
	for i, r := range j.Records {
		if r.SFI < 1 || r.SFI > 30 || r.Record < 1 || r.Record > 255 {
			return nil, inputErr("records[%d]: sfi %d record %d out of range (sfi 1–30, record 1–255)", i, r.SFI, r.Record)
		}
		b, err := hexField(fmt.Sprintf("records[%d].response", i), r.Response)
		if err != nil {
			return nil, err
		}
		in.Records = append(in.Records, tapdata.Record{SFI: r.SFI, Number: r.Record, Data: dropStatusWord(b)})
	}
	if j.StaticData != nil {
		if in.StaticData, err = hexField("static_data", *j.StaticData); err != nil {
			return nil, err
		}
		in.StaticDataSet = true
	}
	for _, f := range []struct {
		name string
		src  string
		dst  *[]byte
	}{
		{"ddol_data", j.DDOLData, &in.DDOLData},
		{"pdol_data", j.PDOLData, &in.PDOLData},
		{"cdol1_data", j.CDOL1Data, &in.CDOL1Data},
		{"gen_ac_response", j.GenACResponse, &in.GenACResponse},
	} {
		if *f.dst, err = hexField(f.name, f.src); err != nil {
			return nil, err
		}
	}
	if j.Date != "" {
		if in.Date, err = time.Parse(time.DateOnly, j.Date); err != nil {
			return nil, inputErr("date %q is not YYYY-MM-DD", j.Date)
		}
	} else if d, ok := in.Data["9A"]; ok {
		if in.Date, err = parseYYMMDD(d); err != nil {
			return nil, err
		}
	}
	return in, nil
}

func hexField(name, s string) ([]byte, error) {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		return nil, inputErr("%s is not hex", name)
	}
	return b, nil
}

// normTag upper-cases a tag and checks it is one BER-TLV tag.
func normTag(tag string) (string, error) {
	b, err := hex.DecodeString(tag)
	if err != nil || len(b) == 0 {
		return "", inputErr("data: tag %q is not hex", tag)
	}
	tags, err := tlv.TagList(b)
	if err != nil || len(tags) != 1 {
		return "", inputErr("data: %q is not one tag", tag)
	}
	return tags[0], nil
}

// dropStatusWord removes a trailing 9000 that follows one complete data
// object.
func dropStatusWord(b []byte) []byte {
	if n := len(b); n >= 2 && b[n-2] == 0x90 && b[n-1] == 0x00 {
		if _, _, rest, err := tlv.Split(b); err == nil && len(rest) == 2 {
			return b[:n-2]
		}
	}
	return b
}

// parseYYMMDD reads a transaction date 9A (n6, YYMMDD; years 00–49 are
// 20xx).
func parseYYMMDD(b []byte) (time.Time, error) {
	if len(b) != 3 {
		return time.Time{}, inputErr("9A: %d bytes, want 3", len(b))
	}
	t, err := time.Parse("060102", fmt.Sprintf("%X", b))
	if err != nil {
		return time.Time{}, inputErr("9A is not a YYMMDD date")
	}
	if t.Year() >= 2050 {
		t = t.AddDate(-100, 0, 0)
	}
	return t, nil
}

// exchangeJSON is one entry of a transcript.
type exchangeJSON struct {
	Command  string `json:"command"`
	Response string `json:"response"`
}

// exchange is a command and its complete response data, with the data of
// GET RESPONSE (61xx) joined to the command it completes.
type exchange struct {
	cmd  []byte
	data []byte
	sw   uint16
}

// ParseTranscriptJSON builds an Input from a recorded transcript, the JSON
// array [{"command": HEX, "response": HEX}] of every APDU exchanged
// (responses end with SW1 SW2). It reads:
//
//   - the RID from the last SELECT of an application (not of a PSE or PPSE)
//     and data objects from its FCI;
//   - the AIP, AFL and other objects from GET PROCESSING OPTIONS (formats 80
//     and 77), and the PDOL data from its command (template 83);
//   - records and their data objects from READ RECORD (SFI from P2, record
//     from P1);
//   - the SDAD (9F4B) from INTERNAL AUTHENTICATE (formats 80 and 77) and the
//     DDOL data from its command;
//   - the first GENERATE AC: its command data as CDOL1 data, its response
//     as GenACResponse (its 9F4B is not copied to the data objects);
//   - terminal data (9F37, 9F02, 5F2A, 9A …) by splitting the PDOL, CDOL1
//     and DDOL data along the PDOL (9F38), CDOL1 (8C) and DDOL (9F49) the
//     card sent; a later command's value wins (CDOL1 over PDOL);
//   - the transaction date from 9A.
//
// Only exchanges ending 9000 count. A 61xx response is completed by the GET
// RESPONSE that follows; a 6Cxx response by the repeated command. Only what
// follows the last application SELECT counts (records of a PSE directory do
// not). When a card sends a data object twice, the first value is kept.
// Errors match ErrInput.
func ParseTranscriptJSON(data []byte) (*Input, error) {
	var raw []exchangeJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return nil, inputErr("transcript: %w", err)
	}
	if len(raw) == 0 {
		return nil, inputErr("transcript: no exchanges")
	}
	var exs []exchange
	for i, r := range raw {
		cmd, err := hexField(fmt.Sprintf("transcript[%d].command", i), r.Command)
		if err != nil {
			return nil, err
		}
		resp, err := hexField(fmt.Sprintf("transcript[%d].response", i), r.Response)
		if err != nil {
			return nil, err
		}
		if len(cmd) < 4 {
			return nil, inputErr("transcript[%d]: command of %d bytes", i, len(cmd))
		}
		if len(resp) < 2 {
			return nil, inputErr("transcript[%d]: response without status word", i)
		}
		sw := uint16(resp[len(resp)-2])<<8 | uint16(resp[len(resp)-1])
		body := resp[:len(resp)-2]
		if cmd[1] == 0xC0 && len(exs) > 0 && exs[len(exs)-1].sw>>8 == 0x61 {
			prev := &exs[len(exs)-1]
			prev.data = append(prev.data, body...)
			prev.sw = sw
			continue
		}
		exs = append(exs, exchange{cmd: cmd, data: bytes.Clone(body), sw: sw})
	}

	t := &transcript{in: &Input{Method: tapdata.MethodAuto, Data: map[string][]byte{}}}
	for i, ex := range exs {
		if ex.sw != 0x9000 {
			continue
		}
		if err := t.exchange(ex); err != nil {
			return nil, inputErr("transcript exchange %d: %w", i, err)
		}
	}
	in := t.in
	if in.RID == nil {
		return nil, inputErr("transcript: no application SELECT")
	}
	for _, d := range []struct {
		dolTag string
		data   []byte
	}{{"9F38", in.PDOLData}, {"9F49", in.DDOLData}, {"8C", in.CDOL1Data}} {
		if err := t.terminalData(d.dolTag, d.data); err != nil {
			return nil, inputErr("transcript: %w", err)
		}
	}
	for tag, v := range t.terminal {
		if _, ok := in.Data[tag]; !ok {
			in.Data[tag] = v
		}
	}
	if d, ok := in.Data["9A"]; ok {
		var err error
		if in.Date, err = parseYYMMDD(d); err != nil {
			return nil, err
		}
	}
	return in, nil
}

type transcript struct {
	in       *Input
	genAC    bool
	terminal map[string][]byte
}

func (t *transcript) exchange(ex exchange) error {
	cla, ins, p1, p2 := ex.cmd[0], ex.cmd[1], ex.cmd[2], ex.cmd[3]
	cdata, err := commandData(ex.cmd)
	if err != nil {
		return err
	}
	switch {
	case ins == 0xA4 && p1 == 0x04: // SELECT by name
		if bytes.Contains(cdata, []byte("PAY.SYS.DDF01")) {
			return nil // PSE or PPSE: a directory, not the application
		}
		if len(cdata) < 5 {
			return errors.New("SELECT of an AID shorter than 5 bytes")
		}
		// What came before belongs to a directory or another application.
		*t = transcript{in: &Input{Method: tapdata.MethodAuto, Data: map[string][]byte{}, RID: bytes.Clone(cdata[:5])}}
		return t.objects(ex.data, nil)
	case ins == 0xA8 && cla&0xF0 == 0x80: // GET PROCESSING OPTIONS
		tag, value, _, err := tlv.Split(cdata)
		if err != nil || tag != "83" {
			return errors.New("GET PROCESSING OPTIONS data is not a template 83")
		}
		t.in.PDOLData = bytes.Clone(value)
		tag, value, _, err = tlv.Split(ex.data)
		if err == nil && tag == "80" { // format 1: AIP and AFL
			if len(value) < 2 {
				return errors.New("GET PROCESSING OPTIONS format 1 response too short")
			}
			t.keep("82", value[:2])
			t.keep("94", value[2:])
			return nil
		}
		return t.objects(ex.data, nil)
	case ins == 0xB2: // READ RECORD
		sfi := int(p2 >> 3)
		if p2&0x07 != 0x04 || sfi < 1 || sfi > 30 || p1 == 0 {
			return nil // not a read of one record by SFI
		}
		t.in.Records = append(t.in.Records, tapdata.Record{SFI: sfi, Number: int(p1), Data: ex.data})
		if tlv.Check(ex.data) != nil && sfi > 10 {
			return nil // a proprietary record need not be TLV
		}
		return t.objects(ex.data, nil)
	case ins == 0x88: // INTERNAL AUTHENTICATE
		t.in.DDOLData = cdata
		tag, value, _, err := tlv.Split(ex.data)
		if err == nil && tag == "80" {
			t.keep("9F4B", value)
			return nil
		}
		return t.objects(ex.data, nil)
	case ins == 0xAE && cla&0xF0 == 0x80: // GENERATE AC
		if t.genAC {
			return nil // only the first counts
		}
		t.genAC = true
		t.in.CDOL1Data = cdata
		t.in.GenACResponse = ex.data
		return t.objects(ex.data, map[string]bool{"9F4B": true})
	case ins == 0xCA && cla&0xF0 == 0x80: // GET DATA
		return t.objects(ex.data, nil)
	}
	return nil
}

// commandData returns the data field of a short APDU command.
func commandData(cmd []byte) ([]byte, error) {
	if len(cmd) <= 5 {
		return nil, nil // case 1 or 2: no data
	}
	lc := int(cmd[4])
	if lc == 0 || 5+lc > len(cmd) || len(cmd) > 5+lc+1 {
		return nil, errors.New("command length does not match Lc")
	}
	return bytes.Clone(cmd[5 : 5+lc]), nil
}

// objects copies every primitive data object of a response, at any depth,
// into the input's data, but those in skip.
func (t *transcript) objects(b []byte, skip map[string]bool) error {
	tlvs, err := tlv.Decode(b)
	if err != nil {
		return err
	}
	tlv.Walk(tlvs, func(o tlv.TLV) {
		if len(o.TLVs) == 0 && !skip[o.Tag] && !constructed(o.Tag) {
			t.keep(o.Tag, o.Value)
		}
	})
	return nil
}

func constructed(tag string) bool {
	b, err := hex.DecodeString(tag)
	return err == nil && len(b) > 0 && b[0]&0x20 != 0
}

func (t *transcript) keep(tag string, v []byte) {
	if _, ok := t.in.Data[tag]; !ok {
		t.in.Data[tag] = bytes.Clone(v)
	}
}

// terminalData splits DOL-built data along the DOL the card sent.
func (t *transcript) terminalData(dolTag string, data []byte) error {
	dolBytes, ok := t.in.Data[dolTag]
	if !ok || len(data) == 0 {
		return nil
	}
	dol, err := tlv.ParseDOL(dolBytes)
	if err != nil {
		return fmt.Errorf("%s: %w", dolTag, err)
	}
	if tlv.DOLLength(dol) != len(data) {
		return fmt.Errorf("%d bytes of data for the %d of %s", len(data), tlv.DOLLength(dol), dolTag)
	}
	if t.terminal == nil {
		t.terminal = map[string][]byte{}
	}
	off := 0
	for _, e := range dol {
		t.terminal[e.Tag] = data[off : off+e.Length]
		off += e.Length
	}
	return nil
}

// ParseRevocations reads an issuer certificate revocation list, the JSON
// array [{"rid": HEX, "index": HEX, "serial": HEX}] (5, 1 and 3 bytes),
// for Options.Revoked.
func ParseRevocations(data []byte) ([]Revocation, error) {
	var raw []struct {
		RID    string `json:"rid"`
		Index  string `json:"index"`
		Serial string `json:"serial"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("oda: revocation list: %w", err)
	}
	out := make([]Revocation, 0, len(raw))
	for i, r := range raw {
		rid, err1 := hex.DecodeString(r.RID)
		idx, err2 := hex.DecodeString(r.Index)
		serial, err3 := hex.DecodeString(r.Serial)
		if errors.Join(err1, err2, err3) != nil || len(rid) != 5 || len(idx) != 1 || len(serial) != 3 {
			return nil, fmt.Errorf("oda: revocation list entry %d: want rid of 5 bytes, index of 1, serial of 3 (hex)", i)
		}
		out = append(out, Revocation{RID: [5]byte(rid), Index: idx[0], Serial: [3]byte(serial)})
	}
	return out, nil
}
