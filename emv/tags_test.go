package emv

import (
	"bytes"
	"context"
	"encoding/hex"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/faregate/faregate/emv/tlv"
)

type answers [][]byte

func (a *answers) Transmit(context.Context, []byte) ([]byte, error) {
	if len(*a) == 0 {
		return []byte{0x6A, 0x82}, nil
	}
	r := (*a)[0]
	*a = (*a)[1:]
	return r, nil
}

// terminalObjects encodes every OriginTerminal tag of the table with a
// value of 0xEE bytes: what a hostile card would send to override the
// terminal's data.
func terminalObjects(t *testing.T) []byte {
	t.Helper()
	var out []byte
	for _, info := range tagList {
		if info.Origin != OriginTerminal || tlv.Constructed(info.Tag) {
			continue
		}
		b, err := tlv.Encode(tlv.TLV{Tag: info.Tag, Value: bytes.Repeat([]byte{0xEE}, 4)})
		require.NoError(t, err)
		out = append(out, b...)
	}
	return out
}

func template(t *testing.T, tag string, parts ...[]byte) []byte {
	t.Helper()
	b, err := tlv.Encode(tlv.TLV{Tag: tag, Value: bytes.Join(parts, nil)})
	require.NoError(t, err)
	return append(b, 0x90, 0x00)
}

func h(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	require.NoError(t, err)
	return b
}

// TestCardNeverSuppliesTerminalData: a card that sends every
// terminal-sourced tag of the table — in the FCI, the GPO response, a
// record and the GENERATE AC response — changes none of the terminal's
// values, the unpredictable number above all, and the data it signs over
// (CDOL1) carries the terminal's values.
func TestCardNeverSuppliesTerminalData(t *testing.T) {
	evil := terminalObjects(t)
	ppse := h(t, "6F23840E325041592E5359532E4444463031A511BF0C0E610C4F07A00000000410108701019000")
	fci := template(t, "6F", h(t, "8407A0000000041010"), template(t, "A5", evil)[:len(template(t, "A5", evil))-2])
	gpo := template(t, "77", h(t, "82020000"+"940408010100"+"8C089F37049A039F0201"), evil)
	rec := template(t, "70", h(t, "5A0854133300000000115F2403311231"), evil)
	genAC := template(t, "77", h(t, "9F2701809F360200019F26080102030405060708"), evil)
	card := answers{ppse, fci, gpo, rec, genAC}

	now := time.Date(2026, 11, 23, 8, 15, 0, 0, time.UTC)
	k, err := NewKernel(Config{Rand: bytes.NewReader([]byte{1, 2, 3, 4}), Now: func() time.Time { return now }})
	require.NoError(t, err)
	tap, err := k.Tap(context.Background(), &card)
	require.NoError(t, err)

	want := map[string][]byte{"9F37": {1, 2, 3, 4}, "9A": {0x26, 0x11, 0x23}, "9F21": {0x08, 0x15, 0x00}}
	for _, o := range fixedTerminalData(&k.cfg) {
		want[o.tag] = o.value
	}
	for _, info := range tagList {
		if info.Origin != OriginTerminal {
			continue
		}
		got, ok := tap.Data[info.Tag]
		if w, set := want[info.Tag]; set {
			require.Equal(t, w, got, "%s (%s) is the terminal's", info.Tag, info.Name)
		} else {
			require.False(t, ok, "%s (%s): the terminal has none, and the card's is dropped", info.Tag, info.Name)
		}
	}
	require.Equal(t, h(t, "01020304"+"261123"+"00"), tap.CDOL1Data)
}

// TestTagSets: the sets the kernel acts on come from the one table.
func TestTagSets(t *testing.T) {
	for _, info := range tagList {
		require.Equal(t, info.Origin == OriginTerminal, isTerminalTag(info.Tag), info.Tag)
		require.Equal(t, info.FCI, isFCITag(info.Tag), info.Tag)
		if info.fixed != nil {
			require.Equal(t, OriginTerminal, info.Origin, "%s: only terminal data has a fixed value", info.Tag)
		}
		require.Equal(t, info.Sensitive, info.mask != nil, "%s: sensitive tags, and they alone, are masked in transcripts", info.Tag)
		require.Equal(t, info.Sensitive, maskers[info.Tag] != nil, info.Tag)
	}
	for _, tag := range []string{"9F37", "9A", "9F21"} { // set by terminalData on each tap
		require.True(t, isTerminalTag(tag), tag)
	}
	seen := map[string]bool{}
	for _, info := range tagList {
		require.False(t, seen[info.Tag], "%s listed twice", info.Tag)
		seen[info.Tag] = true
	}
}
