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

// ErrInput is matched (errors.Is) by every error of ParseInputJSON: the
// file cannot be used as verification input.
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
	in := &Input{}
	var err error
	if in.RID, err = j.rid(); err != nil {
		return nil, err
	}
	m, ok := tapdata.ParseMethod(j.Method)
	if !ok {
		return nil, inputErr("method %q: want auto, SDA, DDA, fDDA or CDA", j.Method)
	}
	in.Method = m
	for _, step := range []func(*Input) error{j.data, j.records, j.commandData, j.date} {
		if err := step(in); err != nil {
			return nil, err
		}
	}
	return in, nil
}

// rid is the RID from "rid", or the first 5 bytes of "aid".
func (j *inputJSON) rid() ([]byte, error) {
	switch {
	case j.RID != "" && j.AID != "":
		return nil, inputErr(`give "rid" or "aid", not both`)
	case j.RID != "":
		rid, err := hexField("rid", j.RID)
		if err == nil && len(rid) != 5 {
			err = inputErr("rid: %d bytes, want 5", len(rid))
		}
		return rid, err
	case j.AID != "":
		aid, err := hexField("aid", j.AID)
		if err != nil {
			return nil, err
		}
		if len(aid) < 5 || len(aid) > 16 {
			return nil, inputErr("aid: %d bytes, want 5 to 16", len(aid))
		}
		return aid[:5], nil
	}
	return nil, inputErr(`"rid" or "aid" is required`)
}

// data decodes "data": tags in any case, each once.
func (j *inputJSON) data(in *Input) error {
	in.Data = make(map[string][]byte, len(j.Data))
	for tag, v := range j.Data {
		t, err := normTag(tag)
		if err != nil {
			return err
		}
		if _, dup := in.Data[t]; dup {
			return inputErr("data: tag %s given twice", t)
		}
		if in.Data[t], err = hexField("data "+t, v); err != nil {
			return err
		}
	}
	return nil
}

// records decodes "records", dropping a trailing status word.
func (j *inputJSON) records(in *Input) error {
	for i, r := range j.Records {
		if r.SFI < 1 || r.SFI > 30 || r.Record < 1 || r.Record > 255 {
			return inputErr("records[%d]: sfi %d record %d out of range (sfi 1–30, record 1–255)", i, r.SFI, r.Record)
		}
		b, err := hexField(fmt.Sprintf("records[%d].response", i), r.Response)
		if err != nil {
			return err
		}
		in.Records = append(in.Records, tapdata.Record{SFI: r.SFI, Number: r.Record, Data: dropStatusWord(b)})
	}
	return nil
}

// commandData decodes "static_data" and the command data the signatures
// cover.
func (j *inputJSON) commandData(in *Input) error {
	var err error
	if j.StaticData != nil {
		if in.StaticData, err = hexField("static_data", *j.StaticData); err != nil {
			return err
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
			return err
		}
	}
	return nil
}

// date is "date", else 9A of "data", else zero.
func (j *inputJSON) date(in *Input) error {
	var err error
	if j.Date != "" {
		if in.Date, err = time.Parse(time.DateOnly, j.Date); err != nil {
			return inputErr("date %q is not YYYY-MM-DD", j.Date)
		}
	} else if d, ok := in.Data["9A"]; ok {
		if in.Date, err = tapdata.ParseDate(d); err != nil {
			return inputErr("%w", err)
		}
	}
	return nil
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
