package oda

import (
	"bytes"

	"github.com/faregate/faregate/emv/tapdata"
	"github.com/faregate/faregate/emv/tlv"
)

// staticData builds the static data to be authenticated (EMV Book 3,
// 10.3): for each AFL entry, the records flagged for offline data
// authentication in order — the value of template 70 for SFI 1–10, the
// whole record for SFI 11–30 — then the AIP when the SDA Tag List (9F4A)
// asks for it. 9F4A must be exactly 82: any other content fails. With
// in.StaticDataSet the caller's bytes are used verbatim.
func staticData(s *scratch, in *Input) ([]byte, *Error) {
	if in.StaticDataSet {
		return in.StaticData, nil
	}
	afl, ok := in.Data["94"]
	if !ok {
		return nil, failTag(StageInput, ReasonMissing, "94")
	}
	var room [8]tapdata.AFLEntry
	entries, perr := tapdata.AppendAFL(room[:0], afl)
	if perr != nil || len(entries) == 0 {
		return nil, failTag(StageStaticData, ReasonAFL, "94")
	}
	buf := s.static[:0]
	for _, e := range entries {
		for num := e.First; e.Flagged(num); num++ {
			rec, ok := findRecord(in.Records, e.SFI, num)
			if !ok {
				return nil, fail(StageStaticData, ReasonMissingRecord)
			}
			if e.SFI > 10 {
				buf = append(buf, rec...)
				continue
			}
			tag, value, rest, err := tlv.Split(rec)
			if err != nil || tag != "70" || len(rest) != 0 || (len(rec) > 0 && rec[0] == 0) {
				return nil, fail(StageStaticData, ReasonRecordTemplate)
			}
			buf = append(buf, value...)
		}
	}
	if list, ok := in.Data["9F4A"]; ok {
		if !bytes.Equal(list, []byte{0x82}) {
			return nil, failTag(StageStaticData, ReasonSDATagList, "9F4A")
		}
		aip, err := need(in, "82", 2)
		if err != nil {
			return nil, err
		}
		buf = append(buf, aip...)
	}
	s.static = buf
	return buf, nil
}

// StaticData returns the static data to be authenticated of in, built by
// the rules Verify applies (docs/oda.md): the
// ODA-flagged records of the AFL (94) and the AIP when 9F4A is 82, or
// in.StaticData verbatim. A software card personalises its certificates
// over it. Failures are an *Error.
func StaticData(in *Input) ([]byte, error) {
	var s scratch
	b, err := staticData(&s, in)
	if err != nil {
		return nil, err
	}
	return bytes.Clone(b), nil
}

func findRecord(records []tapdata.Record, sfi, num int) ([]byte, bool) {
	for i := range records {
		if records[i].SFI == sfi && records[i].Number == num {
			return records[i].Data, true
		}
	}
	return nil, false
}

// walkTLVs calls fn for each data object of b in order with its tag, value
// and raw encoding. '00' padding between objects is skipped.
func walkTLVs(b []byte, fn func(tag string, value, raw []byte)) *Error {
	for {
		for len(b) > 0 && b[0] == 0x00 {
			b = b[1:]
		}
		if len(b) == 0 {
			return nil
		}
		tag, value, rest, err := tlv.Split(b)
		if err != nil {
			return &Error{Stage: StageInput, Reason: ReasonMalformed, Tag: "77", Err: err}
		}
		fn(tag, value, b[:len(b)-len(rest)])
		b = rest
	}
}

// genACContent returns the data objects of a GENERATE AC response: the
// content of template 77, or b itself when it is that content already.
// Format 1 (80) cannot carry a CDA signature.
func genACContent(b []byte) ([]byte, *Error) {
	if len(b) == 0 {
		return nil, failTag(StageInput, ReasonMissing, "77")
	}
	tag, value, rest, err := tlv.Split(b)
	if err != nil {
		return nil, &Error{Stage: StageInput, Reason: ReasonMalformed, Tag: "77", Err: err}
	}
	switch tag {
	case "77":
		if len(bytes.Trim(rest, "\x00")) != 0 {
			return nil, failTag(StageInput, ReasonMalformed, "77")
		}
		return value, nil
	case "80":
		return nil, failTag(StageInput, ReasonMalformed, "77")
	}
	return b, nil
}

func genACHasSDAD(b []byte) bool {
	content, err := genACContent(b)
	if err != nil {
		return false
	}
	found := false
	walkTLVs(content, func(tag string, _, _ []byte) {
		if tag == "9F4B" {
			found = true
		}
	})
	return found
}
