package oda_test

import (
	"errors"
	"testing"
	"time"

	"github.com/faregate/faregate/emv/tapdata"
	"github.com/faregate/faregate/oda"
	"github.com/stretchr/testify/require"
)

func TestParseInputJSON(t *testing.T) {
	in, err := oda.ParseInputJSON([]byte(`{
		"aid": "a0000000041010",
		"method": "CDA",
		"data": {"9f46": "0102", "92": "", "9A": "261123"},
		"records": [{"sfi": 1, "record": 2, "response": "70035A01019000"}, {"sfi": 11, "record": 1, "response": "DF0101019000AB"}],
		"static_data": "",
		"ddol_data": "01", "pdol_data": "02", "cdol1_data": "03", "gen_ac_response": "77 03 9F2701 40",
		"comment": "free text"
	}`))
	require.NoError(t, err)
	require.Equal(t, []byte{0xA0, 0, 0, 0, 4}, in.RID)
	require.Equal(t, tapdata.MethodCDA, in.Method)
	require.Equal(t, []byte{1, 2}, in.Data["9F46"], "tags are upper-cased")
	v, ok := in.Data["92"]
	require.True(t, ok, "an empty string is present")
	require.Empty(t, v)
	require.Equal(t, time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC), in.Date, "9A is the date without \"date\"")
	require.Equal(t, []tapdata.Record{
		{SFI: 1, Number: 2, Data: []byte{0x70, 0x03, 0x5A, 0x01, 0x01}},              // status word dropped
		{SFI: 11, Number: 1, Data: []byte{0xDF, 0x01, 0x01, 0x01, 0x90, 0x00, 0xAB}}, // kept: not after one object
	}, in.Records)
	require.True(t, in.StaticDataSet)
	require.Empty(t, in.StaticData)
	require.Equal(t, []byte{1}, in.DDOLData)
	require.Equal(t, []byte{0x77, 0x03, 0x9F, 0x27, 0x01, 0x40}, in.GenACResponse)

	in, err = oda.ParseInputJSON([]byte(`{"rid":"A000000003","date":"2026-01-31","data":{"9A":"261123"}}`))
	require.NoError(t, err)
	require.Equal(t, time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC), in.Date, `"date" wins over 9A`)
	require.Equal(t, tapdata.MethodAuto, in.Method)
	require.False(t, in.StaticDataSet)
}

func TestParseInputJSONErrors(t *testing.T) {
	for _, tc := range []struct{ json, msg string }{
		{`[]`, "cannot unmarshal"},
		{`{"rid":"A000000003"} {}`, "trailing data"},
		{`{"rid":"A000000003","aid":"A0000000031010"}`, "not both"},
		{`{"rid":"A0000000"}`, "rid: 4 bytes"},
		{`{"aid":"A000"}`, "aid: 2 bytes"},
		{`{}`, `"rid" or "aid" is required`},
		{`{"rid":"A000000003","method":"sda"}`, `method "sda"`},
		{`{"rid":"A000000003","data":{"9F":"01"}}`, `"9F" is not one tag`},
		{`{"rid":"A000000003","data":{"5A5A":"01"}}`, `"5A5A" is not one tag`},
		{`{"rid":"A000000003","data":{"XY":"01"}}`, "not hex"},
		{`{"rid":"A000000003","data":{"9f46":"01","9F46":"02"}}`, "given twice"},
		{`{"rid":"A000000003","data":{"9A":"261340"}}`, "9A is not a YYMMDD date"},
		{`{"rid":"A000000003","data":{"9A":"2611"}}`, "9A is not a YYMMDD date: 2 bytes"},
		{`{"rid":"A000000003","records":[{"sfi":31,"record":1,"response":"70"}]}`, "out of range"},
		{`{"rid":"A000000003","records":[{"sfi":1,"record":0,"response":"70"}]}`, "out of range"},
		{`{"rid":"A000000003","records":[{"sfi":1,"record":1,"response":"7"}]}`, "records[0].response is not hex"},
		{`{"rid":"A000000003","static_data":"0"}`, "static_data is not hex"},
		{`{"rid":"A000000003","gen_ac_response":"QQ"}`, "gen_ac_response is not hex"},
		{`{"rid":"A000000003","pan":"4761"}`, `unknown field "pan"`},
	} {
		_, err := oda.ParseInputJSON([]byte(tc.json))
		require.ErrorIs(t, err, oda.ErrInput, tc.json)
		require.Contains(t, err.Error(), tc.msg, tc.json)
	}
}

func TestParseRevocations(t *testing.T) {
	rs, err := oda.ParseRevocations([]byte(`[{"rid":"A000000003","index":"92","serial":"123456"}]`))
	require.NoError(t, err)
	require.Equal(t, []oda.Revocation{{RID: [5]byte{0xA0, 0, 0, 0, 3}, Index: 0x92, Serial: [3]byte{0x12, 0x34, 0x56}}}, rs)
	for _, bad := range []string{`{}`, `[{"rid":"A0","index":"92","serial":"123456"}]`, `[{"rid":"A000000003","index":"92","serial":"12"}]`, `[{"rid":"A000000003","index":"92","serial":"123456","x":1}]`} {
		_, err := oda.ParseRevocations([]byte(bad))
		require.Error(t, err, bad)
	}
	var e *oda.Error
	require.False(t, errors.As(err, &e))
}
