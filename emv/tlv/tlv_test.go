package tlv

import (
	"encoding/hex"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	require.NoError(t, err)
	return b
}

func TestDecodeValid(t *testing.T) {
	// PPSE FCI of a Visa card: 6F > 84, A5 > BF0C > 61 > 4F, 87.
	b := unhex(t, "6F23840E325041592E5359532E4444463031A511BF0C0E610C4F07A0000000031010870101")
	tlvs, err := Decode(b)
	require.NoError(t, err)
	aid, ok := Find(tlvs, "4F")
	require.True(t, ok)
	require.Equal(t, unhex(t, "A0000000031010"), aid.Value)
	prio, ok := Find(tlvs, "87")
	require.True(t, ok)
	require.Equal(t, []byte{1}, prio.Value)
}

func TestCheckRejects(t *testing.T) {
	tests := []struct {
		name, hex, reason string
	}{
		{"truncated tag", "9F", "truncated tag"},
		{"missing length", "9F02", "missing length"},
		{"indefinite length", "7080", "indefinite length"},
		{"length of 4 bytes (bertlv overflow)", "5A84FFFFFFFF", "length too long"},
		{"length of 8 bytes", "5A88FFFFFFFFFFFFFFFF01", "length too long"},
		{"truncated long length", "5A82FF", "truncated length"},
		{"value past end", "5A0812345678", "value runs past the end of its parent"},
		{"inner value past parent", "7003" + "5A0512", "value runs past the end of its parent"},
		{"tag too long", "9FFFFF0100", "tag too long"},
		{"nested too deep", "E112E110E10EE10CE10AE108E106E104E102E100", "nested too deep"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check(unhex(t, tt.hex))
			require.ErrorIs(t, err, ErrMalformed)
			var se *SyntaxError
			require.True(t, errors.As(err, &se))
			require.Equal(t, tt.reason, se.Reason)
			_, err = Decode(unhex(t, tt.hex))
			require.ErrorIs(t, err, ErrMalformed)
		})
	}
}

func TestErrorDoesNotQuoteData(t *testing.T) {
	// A record with a PAN and a broken trailing element.
	err := Check(unhex(t, "70125A0847617390010100105F2403251231"+"9F"))
	require.Error(t, err)
	require.NotContains(t, err.Error(), "4761739001010010")
}

func TestPaddingBetweenObjects(t *testing.T) {
	tlvs, err := Decode(unhex(t, "00005F2A0209780000"))
	require.NoError(t, err)
	require.Len(t, tlvs, 1)
	require.Equal(t, "5F2A", tlvs[0].Tag)
}

func TestSplit(t *testing.T) {
	tag, v, rest, err := Split(unhex(t, "7081035A0112"+"9000"))
	require.NoError(t, err)
	require.Equal(t, "70", tag)
	require.Equal(t, unhex(t, "5A0112"), v)
	require.Equal(t, unhex(t, "9000"), rest)
}

func TestParseDOL(t *testing.T) {
	dol, err := ParseDOL(unhex(t, "9F66049F02069F03069F1A0295055F2A029A039C019F3704"))
	require.NoError(t, err)
	require.Equal(t, []DOLEntry{
		{"9F66", 4}, {"9F02", 6}, {"9F03", 6}, {"9F1A", 2}, {"95", 5},
		{"5F2A", 2}, {"9A", 3}, {"9C", 1}, {"9F37", 4},
	}, dol)
	require.Equal(t, 33, DOLLength(dol))
	_, err = ParseDOL(unhex(t, "9F66"))
	require.ErrorIs(t, err, ErrMalformed)
}

func TestTagList(t *testing.T) {
	tags, err := TagList(unhex(t, "82"))
	require.NoError(t, err)
	require.Equal(t, []string{"82"}, tags)
	tags, err = TagList(unhex(t, "829F36"))
	require.NoError(t, err)
	require.Equal(t, []string{"82", "9F36"}, tags)
}

func TestEncodeRoundTrip(t *testing.T) {
	b, err := Encode(TLV{Tag: "70", TLVs: []TLV{{Tag: "5F24", Value: []byte{0x25, 0x12, 0x31}}, {Tag: "8F", Value: []byte{0x92}}}})
	require.NoError(t, err)
	require.Equal(t, unhex(t, "70095F24032512318F0192"), b)
	tlvs, err := Decode(b)
	require.NoError(t, err)
	require.Equal(t, "5F24", tlvs[0].TLVs[0].Tag)
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		"6F23840E325041592E5359532E4444463031A511BF0C0E610C4F07A000000003101087",
		"7081035A0112",
		"5A84FFFFFFFF",
		"E112E110E10EE10CE10AE108E106E104E102E100",
		"77819082023980940818010100100203009F360200019F2701809F2608C74D18B08248FEFC9F10201F43FF",
	} {
		f.Add(unhex(f, s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tlvs, err := Decode(b)
		if err != nil {
			require.ErrorIs(t, err, ErrMalformed)
			return
		}
		// What decodes re-encodes and decodes to the same objects.
		enc, err := Encode(tlvs...)
		if err != nil {
			return // e.g. an empty constructed object has no canonical form in bertlv
		}
		again, err := Decode(enc)
		require.NoError(t, err)
		require.Equal(t, len(tlvs), len(again))
		_, _, _, _ = Split(b)
		_, _ = ParseDOL(b)
		_, _ = TagList(b)
	})
}

func TestWalkers(t *testing.T) {
	b := unhex(t, "6F23840E325041592E5359532E4444463031A511BF0C0E610C4F07A0000000031010870101")
	var tags []string
	require.NoError(t, Each(b, func(tag string, v []byte) error {
		tags = append(tags, tag)
		return nil
	}))
	require.Equal(t, []string{"84", "4F", "87"}, tags)

	v, ok, err := Lookup(b, "4F")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, unhex(t, "A0000000031010"), v)
	_, ok, err = Lookup(b, "9F38")
	require.NoError(t, err)
	require.False(t, ok)

	var top []string
	require.NoError(t, Children(b, func(tag string, _ []byte) error { top = append(top, tag); return nil }))
	require.Equal(t, []string{"6F"}, top)

	require.ErrorIs(t, Each(unhex(t, "5A84FFFFFFFF"), func(string, []byte) error { return nil }), ErrMalformed)
	_, _, err = Lookup(unhex(t, "7003"), "5A")
	require.ErrorIs(t, err, ErrMalformed)
}

func TestTagStrings(t *testing.T) {
	for _, tag := range []string{"5A", "9F37", "5F2A", "BF0C", "DF8129", "9F7C", "01"} {
		tags, err := TagList(unhex(t, tag))
		require.NoError(t, err)
		require.Equal(t, []string{tag}, tags)
	}
	require.True(t, Constructed("70"))
	require.True(t, Constructed("BF0C"))
	require.True(t, Constructed("E1"))
	require.False(t, Constructed("9F37"))
	require.False(t, Constructed("5A"))
	require.False(t, Constructed(""))
}
