package oda_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/faregate/faregate/emv/tapdata"
	"github.com/faregate/faregate/oda"
	"github.com/stretchr/testify/require"
)

func TestLoadShippedKeyLists(t *testing.T) {
	for _, tc := range []struct {
		file string
		n    int
		test bool
	}{{"live.json", 11, false}, {"test.json", 21, true}, {"generated.json", 2, true}, {"generated-live.json", 2, false}} {
		ks, err := oda.LoadKeyStore(filepath.Join("../testdata/capk", tc.file))
		require.NoError(t, err, tc.file)
		require.Equal(t, tc.n, ks.Len(), tc.file)
		require.Equal(t, tc.test, ks.HasTestKeys(), tc.file)
		for _, k := range ks.Keys() {
			require.Equal(t, tc.test, k.Test, "%s %X/%02X", tc.file, k.RID, k.Index)
		}
	}
	live, err := oda.LoadKeyStore("../testdata/capk/live.json")
	require.NoError(t, err)
	k, ok := live.Lookup([]byte{0xA0, 0, 0, 0, 0x03}, 0x01)
	require.True(t, ok)
	require.Equal(t, time.Date(2009, 12, 31, 0, 0, 0, 0, time.UTC), k.Expiry)
	require.Equal(t, "D34A6A776011C7E7CE3AEC5F03AD2F8CFC5503CC", fmt.Sprintf("%X", k.Checksum()))
	_, ok = live.Lookup([]byte{0xA0, 0, 0, 0, 0x03}, 0x92)
	require.False(t, ok, "the live list has no Visa test key 92")
	_, ok = live.Lookup([]byte{0xA0, 0, 0, 0}, 0x01)
	require.False(t, ok, "short RID")
}

// The published checksums that do not match their key are refused, naming
// the key.
func TestKeyChecksumMismatch(t *testing.T) {
	_, err := oda.LoadKeyStore("../testdata/capk/bad-checksum.json")
	require.ErrorIs(t, err, oda.ErrKeyChecksum)
	require.Contains(t, err.Error(), "A000000004/FB")
}

func keyJSON(fields map[string]any) string {
	base := map[string]any{
		"rid":      "A000000003",
		"index":    "92",
		"modulus":  "C3" + strings.Repeat("00", 126) + "01",
		"exponent": "03",
	}
	for k, v := range fields {
		if v == nil {
			delete(base, k)
		} else {
			base[k] = v
		}
	}
	b, _ := json.Marshal([]any{base})
	return string(b)
}

func TestParseKeyStore(t *testing.T) {
	for _, tc := range []struct {
		name   string
		json   string
		err    error
		expiry time.Time
	}{
		{name: "minimal", json: keyJSON(nil)},
		{name: "expiry YYYY-MM-DD", json: keyJSON(map[string]any{"expiry": "2028-12-31"}), expiry: time.Date(2028, 12, 31, 0, 0, 0, 0, time.UTC)},
		{name: "expiry YYMMDD", json: keyJSON(map[string]any{"expiry": "221231"}), expiry: time.Date(2022, 12, 31, 0, 0, 0, 0, time.UTC)},
		{name: "expiry YYMMDD of the 1990s", json: keyJSON(map[string]any{"expiry": "991231"}), expiry: time.Date(1999, 12, 31, 0, 0, 0, 0, time.UTC)},
		{name: "exponent 65537", json: keyJSON(map[string]any{"exponent": "010001"})},
		{name: "test key", json: keyJSON(map[string]any{"test": true})},
		{name: "lower-case hex", json: keyJSON(map[string]any{"rid": "a000000003", "index": "9f"})},
		{name: "bad expiry", json: keyJSON(map[string]any{"expiry": "12/28"}), err: oda.ErrKeyInvalid},
		{name: "RID of 4 bytes", json: keyJSON(map[string]any{"rid": "A0000000"}), err: oda.ErrKeyInvalid},
		{name: "index of 2 bytes", json: keyJSON(map[string]any{"index": "0092"}), err: oda.ErrKeyInvalid},
		{name: "modulus not hex", json: keyJSON(map[string]any{"modulus": "XYZ"}), err: oda.ErrKeyInvalid},
		{name: "modulus too short", json: keyJSON(map[string]any{"modulus": "C301"}), err: oda.ErrKeyInvalid},
		{name: "modulus too long", json: keyJSON(map[string]any{"modulus": "C3" + strings.Repeat("00", 247) + "01"}), err: oda.ErrKeyInvalid},
		{name: "modulus with a leading zero", json: keyJSON(map[string]any{"modulus": "00C3" + strings.Repeat("00", 125) + "01"}), err: oda.ErrKeyInvalid},
		{name: "modulus even", json: keyJSON(map[string]any{"modulus": "C3" + strings.Repeat("00", 127)}), err: oda.ErrKeyInvalid},
		{name: "exponent 5", json: keyJSON(map[string]any{"exponent": "05"}), err: oda.ErrKeyInvalid},
		{name: "no exponent", json: keyJSON(map[string]any{"exponent": nil}), err: oda.ErrKeyInvalid},
		{name: "checksum of 19 bytes", json: keyJSON(map[string]any{"sha1_checksum": strings.Repeat("00", 19)}), err: oda.ErrKeyInvalid},
		{name: "checksum mismatch", json: keyJSON(map[string]any{"sha1_checksum": strings.Repeat("00", 20)}), err: oda.ErrKeyChecksum},
		{name: "unknown field", json: keyJSON(map[string]any{"expiry_yymmdd": "221231"}), err: oda.ErrKeyInvalid},
		{name: "duplicate", json: strings.Replace(keyJSON(nil), "]", ","+strings.Trim(keyJSON(nil), "[]")+"]", 1), err: oda.ErrKeyDuplicate},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ks, err := oda.ParseKeyStore([]byte(tc.json))
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				require.True(t, strings.HasPrefix(err.Error(), "oda: "), err.Error())
				return
			}
			require.NoError(t, err)
			keys := ks.Keys()
			require.Len(t, keys, 1)
			require.Equal(t, tc.expiry, keys[0].Expiry)
		})
	}
	for _, bad := range []string{"", "{}", "[1]", "[] []", "[{}]"} {
		_, err := oda.ParseKeyStore([]byte(bad))
		require.Error(t, err, bad)
	}
}

// A list written by MarshalKeyList reads back the same, checksums included.
func TestKeyListRoundTrip(t *testing.T) {
	ks, err := oda.LoadKeyStore("../testdata/capk/live.json")
	require.NoError(t, err)
	b, err := oda.MarshalKeyList(ks.Keys())
	require.NoError(t, err)
	again, err := oda.ParseKeyStore(b)
	require.NoError(t, err)
	require.Equal(t, ks.Keys(), again.Keys())
	require.Contains(t, string(b), `"sha1_checksum"`)
}

func TestCAKeyExpiryHonoured(t *testing.T) {
	c := newCard(t, tapdata.MethodSDA)
	k := caKey(t, c.ca, true)
	k.Expiry = time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	v := oda.NewVerifier(store(t, k), oda.Options{TestMode: true})
	in := c.input()
	in.Date = time.Date(2026, 11, 23, 23, 59, 59, 0, time.UTC) // the last day counts
	_, err := v.Verify(in)
	require.NoError(t, err)
	in.Date = time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	_, err = v.Verify(in)
	var e *oda.Error
	require.True(t, errors.As(err, &e))
	require.Equal(t, oda.StageCAPK, e.Stage)
	require.Equal(t, oda.ReasonExpired, e.Reason)
}

func TestParseRID(t *testing.T) {
	rid, err := oda.ParseRID("A0000000031010")
	require.NoError(t, err)
	require.Equal(t, []byte{0xA0, 0, 0, 0, 3}, rid)
	for _, bad := range []string{"", "A0", "XYZ", strings.Repeat("A0", 17)} {
		_, err := oda.ParseRID(bad)
		require.Error(t, err, bad)
	}
}
