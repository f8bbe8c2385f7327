package cardsim

import (
	"context"
	"encoding/hex"
	"io/fs"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/faregate/faregate"
	"github.com/faregate/faregate/emv"
)

func load(t testing.TB, name string) *Card {
	t.Helper()
	c, err := LoadFS(faregate.TestData, "testdata/cards/"+name+".json", Options{})
	require.NoError(t, err)
	return c
}

func send(t testing.TB, c *Card, apdu string) string {
	t.Helper()
	b, err := hex.DecodeString(apdu)
	require.NoError(t, err)
	resp, err := c.Transmit(context.Background(), b)
	require.NoError(t, err)
	return strings.ToUpper(hex.EncodeToString(resp))
}

func statusOf(resp string) string { return resp[len(resp)-4:] }

func TestCardAnswers(t *testing.T) {
	c := load(t, "visa-qvsdc")
	ppse := "00A404000E325041592E5359532E444446303100"
	selectVisa := "00A4040007A000000003101000"
	gpo := "80A8000023832121804000000000000000000000000000082600000000000826261123000102030400"
	tests := []struct {
		name  string
		setup []string
		apdu  string
		sw    string
	}{
		{"PPSE", nil, ppse, "9000"},
		{"unknown application", nil, "00A4040007A000000004101000", "6A82"},
		{"select by file id", nil, "00A4000002010000", "6A86"},
		{"GPO before SELECT", nil, gpo, "6985"},
		{"GPO with wrong PDOL length", []string{selectVisa}, "80A80000048302000000", "6700"},
		{"GPO with wrong class", []string{selectVisa}, "00" + gpo[2:], "6E00"},
		{"GPO", []string{selectVisa}, gpo, "9000"},
		{"second GPO", []string{selectVisa, gpo}, gpo, "6985"},
		{"record", []string{selectVisa}, "00B2010C00", "9000"},
		{"record not found", []string{selectVisa}, "00B2090C00", "6A83"},
		{"record with bad P2", []string{selectVisa}, "00B2010800", "6A86"},
		{"GENERATE AC on a qVSDC card", []string{selectVisa, gpo}, "80AE80000100", "6985"},
		{"unknown instruction", nil, "00EE000000", "6D00"},
		{"GET RESPONSE with nothing pending", nil, "00C0000000", "6985"},
		{"truncated APDU", nil, "00A4", "6700"},
		{"Lc beyond the data", nil, "00A40400FF00", "6700"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.PowerOn()
			for _, s := range tt.setup {
				require.Equal(t, "9000", statusOf(send(t, c, s)), s)
			}
			require.Equal(t, tt.sw, statusOf(send(t, c, tt.apdu)))
		})
	}
}

func TestRemoveAndPresent(t *testing.T) {
	c := load(t, "fault-card-removed")
	ppse, _ := hex.DecodeString("00A404000E325041592E5359532E444446303100")
	for i := range 4 {
		_, err := c.Transmit(context.Background(), ppse)
		require.NoError(t, err, "APDU %d", i+1)
	}
	_, err := c.Transmit(context.Background(), ppse)
	require.ErrorIs(t, err, ErrRemoved)
	require.ErrorIs(t, err, emv.ErrCardRemoved)
	require.True(t, c.Removed())
	c.Present()
	_, err = c.Transmit(context.Background(), ppse)
	require.NoError(t, err)
	c.Remove()
	_, err = c.Transmit(context.Background(), ppse)
	require.ErrorIs(t, err, ErrRemoved)
}

func TestBuildAFL(t *testing.T) {
	rec := func(sfi, n int, oda bool) RecordSpec { return RecordSpec{SFI: sfi, Record: n, ODA: oda} }
	tests := []struct {
		recs []RecordSpec
		want string
	}{
		{[]RecordSpec{rec(1, 1, true)}, "08010101"},
		{[]RecordSpec{rec(1, 1, true), rec(1, 2, true), rec(1, 3, false)}, "08010302"},
		{[]RecordSpec{rec(1, 1, false), rec(1, 2, true)}, "0801010008020201"},
		{[]RecordSpec{rec(1, 1, true), rec(1, 3, true), rec(2, 1, false)}, "080101010803030110010100"},
		{[]RecordSpec{rec(11, 1, true)}, "58010101"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, strings.ToUpper(hex.EncodeToString(buildAFL(tt.recs))), "%v", tt.recs)
	}
}

func TestProfileErrors(t *testing.T) {
	tests := []struct{ json, err string }{
		{`{}`, "no name"},
		{`{"name":"x"}`, "no application"},
		{`{"name":"x","colour":"red"}`, "unknown field"},
		{`{"name":"x","applications":[{"aid":"A000","flow":"emv","aip":"0000"}]}`, "aid must be 5 to 16 bytes"},
		{`{"name":"x","applications":[{"aid":"A0000000031010","flow":"magstripe","aip":"0000"}]}`, "flow must be"},
		{`{"name":"x","applications":[{"aid":"A0000000031010","flow":"emv","aip":"00"}]}`, "aip must be 2 bytes"},
		{`{"name":"x","applications":[{"aid":"A0000000031010","flow":"emv","aip":"0000","records":[{"sfi":31,"record":1}]}]}`, "out of range"},
		{`{"name":"x","faults":{"no_ppse":true,"malformed":"gpx"}}`, "unknown step"},
		{`{"name":"x","faults":{"no_ppse":true,"status_words":{"gpo":"69"}}}`, "4 hex digits"},
		{`{"name":"x","applications":[{"aid":"ZZ","flow":"emv","aip":"0000"}]}`, "not hex"},
	}
	for _, tt := range tests {
		_, err := ParseProfile([]byte(tt.json))
		require.ErrorContains(t, err, tt.err, tt.json)
	}
}

func TestEveryProfileLoads(t *testing.T) {
	names, err := fs.Glob(faregate.TestData, "testdata/cards/*.json")
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(names), 20)
	for _, n := range names {
		_, err := LoadFS(faregate.TestData, n, Options{})
		require.NoError(t, err, n)
	}
}

// FuzzTransmit: over vpcd the card answers bytes from a network peer. It
// must answer every APDU with a status word and never panic.
func FuzzTransmit(f *testing.F) {
	for _, s := range []string{
		"00A404000E325041592E5359532E444446303100",
		"00A4040007A000000003101000",
		"80A8000023832121804000000000000000000000000000082600000000000826261123000102030400",
		"00B2010C00", "80AE80000100", "00880000040102030400", "00C0000000", "00A4", "",
	} {
		b, _ := hex.DecodeString(s)
		f.Add(b, b)
	}
	c := load(f, "mastercard-cda")
	f.Fuzz(func(t *testing.T, a, b []byte) {
		c.PowerOn()
		for _, apdu := range [][]byte{a, b} {
			resp, err := c.Transmit(context.Background(), apdu)
			if err != nil {
				t.Fatal(err)
			}
			if len(resp) < 2 {
				t.Fatalf("response without status word: %X", resp)
			}
		}
	})
}
