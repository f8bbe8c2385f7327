package emv_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/faregate/faregate/emv"
	"github.com/faregate/faregate/emv/tapdata"
)

func readTranscript(t testing.TB, path string) emv.Transcript {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	tr, err := emv.ParseTranscript(b)
	require.NoError(t, err)
	return tr
}

// A contact recording (PSE, GET DATA, VERIFY, two GENERATE ACs) replays
// through the contactless kernel: the application's SELECT, GPO and
// records, each completed by GET RESPONSE or resent after 6Cxx by the
// kernel itself; the terminal data come from the recorded commands.
func TestReplayContactTranscript(t *testing.T) {
	tr := readTranscript(t, "../testdata/oda/transcripts/emvpt-dda.json")
	in, err := emv.ODAInputFromTranscript(context.Background(), tr, time.Time{})
	require.NoError(t, err)
	require.Equal(t, unhex(t, "AFFFFFFFFF"), in.RID, "the application, not the PSE")
	require.Equal(t, tapdata.MethodAuto, in.Method)
	require.Equal(t, []byte{0x3C, 0x00}, in.Data["82"], "GPO format 1, completed by GET RESPONSE")
	require.Equal(t, unhex(t, "080202001001020018010201"), in.Data["94"])
	require.Len(t, in.Records, 5, "the application's records, each read after a 6Cxx; not the PSE's")
	require.NotContains(t, in.Data, "88", "the PSE's SFI is not the application's")
	require.Equal(t, unhex(t, "01234567"), in.DDOLData)
	require.Len(t, in.Data["9F4B"], 128, "INTERNAL AUTHENTICATE format 1")
	require.Equal(t, unhex(t, "01234567"), in.Data["9F37"], "from the DDOL and CDOL1 data")
	require.Equal(t, unhex(t, "0978"), in.Data["5F2A"], "from the CDOL1 data")
	require.Equal(t, time.Date(2020, 7, 24, 0, 0, 0, 0, time.UTC), in.Date)
	require.Equal(t, unhex(t, "000000000001000000000000024600000000000978200724210123456700")[:29], in.CDOL1Data, "the first GENERATE AC")
	require.Equal(t, unhex(t, "8000F3B0189101D11416C106010A03A4A002"), in.GenACResponse, "format 1 content")
}

// The generated CDA recording: the GENERATE AC signature (9F4B) stays in
// the response the CDA check hashes.
func TestReplayCDATranscript(t *testing.T) {
	tr := readTranscript(t, "../testdata/oda/transcripts/generated-cda.json")
	k, err := emv.NewKernel(emv.Config{Now: func() time.Time { return txDate }})
	require.NoError(t, err)
	tap, err := k.Replay(context.Background(), tr)
	require.NoError(t, err)
	require.Equal(t, tapdata.MethodCDA, tap.ODA.Method)
	require.Equal(t, emv.CryptogramTC, tap.Cryptogram)
	require.Equal(t, []byte{0x40}, tap.Data["9F27"])
	require.Empty(t, tap.PDOLData)
	require.Equal(t, time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC), tap.Started, "9A of the CDOL1 data")
}

// CDOL1 data win over PDOL data for the terminal data both carry; only the
// first GENERATE AC counts; without a recorded 9A the date is the caller's.
func TestReplayTerminalDataPrecedence(t *testing.T) {
	tr := `[
	 {"command":"00A4040007A000000003101000","response":"6F118407A0000000031010A5069F38039F37049000"},
	 {"command":"80A8000006830411111111","response":"770A820200009404080101009000"},
	 {"command":"00B2010C00","response":"7015 5A0847617390010100105F2403311231 8C039F3704 9000"},
	 {"command":"80AE80000422222222","response":"77049F2701809000"},
	 {"command":"80AE40000433333333","response":"77049F2701009000"}
	]`
	parsed, err := emv.ParseTranscript([]byte(strings.ReplaceAll(tr, " ", "")))
	require.NoError(t, err)
	in, err := emv.ODAInputFromTranscript(context.Background(), parsed, time.Time{})
	require.NoError(t, err)
	require.Equal(t, unhex(t, "22222222"), in.Data["9F37"])
	require.Equal(t, unhex(t, "11111111"), in.PDOLData)
	require.Equal(t, unhex(t, "22222222"), in.CDOL1Data, "second GENERATE AC ignored")
	require.Equal(t, []byte{0x80}, in.Data["9F27"])
	require.True(t, in.Date.IsZero(), "no 9A")
}

func TestReplayErrors(t *testing.T) {
	sel := `{"command":"00A4040007A000000003101000","response":"6F118407A0000000031010A5069F38039F37049000"}`
	for _, tc := range []struct{ json, msg string }{
		{`{}`, "transcript"},
		{`[]`, "no exchanges"},
		{`[{"command":"00A4","response":"9000"}]`, "command of 2 bytes"},
		{`[{"command":"00A4040000","response":"90"}]`, "without status word"},
		{`[{"command":"00A4040000","response":"9000","x":1}]`, "unknown field"},
		{`[{"command":"00B2Z","response":"9000"}]`, "not hex"},
		{`[` + sel + `] []`, "trailing data"},
	} {
		_, err := emv.ParseTranscript([]byte(tc.json))
		require.ErrorIs(t, err, emv.ErrTranscript, tc.json)
		require.ErrorContains(t, err, tc.msg, tc.json)
	}
	for _, tc := range []struct {
		json   string
		step   emv.Step
		reason emv.Reason
	}{
		{`[` + sel + `,{"command":"80A80000028400","response":"800200009000"}]`, emv.StepGPO, emv.ReasonMalformed},                                    // not a template 83
		{`[` + sel + `,{"command":"80A800000583021111","response":"800200009000"}]`, emv.StepGPO, emv.ReasonMalformed},                                // Lc
		{`[` + sel + `,{"command":"80A80000058303111111","response":"800200009000"}]`, emv.StepGPO, emv.ReasonMalformed},                              // 3 bytes for a DOL of 4
		{`[` + sel + `,{"command":"80A8000006830411111111","response":"77FF9000"}]`, emv.StepGPO, emv.ReasonMalformed},                                // card data
		{`[` + sel + `,{"command":"00B2010C00","response":"9000"}]`, emv.StepGPO, emv.ReasonCommunication},                                            // no GPO recorded
		{`[` + sel + `,{"command":"80A8000006830411111111","response":"770A820220009404080101009000"}]`, emv.StepReadRecord, emv.ReasonCommunication}, // ends early
	} {
		tr, err := emv.ParseTranscript([]byte(tc.json))
		require.NoError(t, err)
		tap, err := kernel(t).Replay(context.Background(), tr)
		var te *emv.TapError
		require.ErrorAs(t, err, &te, tc.json)
		require.Equal(t, tc.step, te.Step, "%s: %v", tc.json, err)
		require.Equal(t, tc.reason, te.Reason, "%s: %v", tc.json, err)
		require.NotNil(t, tap.AID, "the application was selected")
	}
	tr, err := emv.ParseTranscript([]byte(`[{"command":"00B2010C00","response":"9000"}]`))
	require.NoError(t, err)
	_, err = emv.ODAInputFromTranscript(context.Background(), tr, time.Time{})
	require.ErrorIs(t, err, emv.ErrTranscript)
	require.ErrorContains(t, err, "no application SELECT")
}

// A gate's own recording replays to the same tap.
func TestReplayOwnRecording(t *testing.T) {
	for _, name := range []string{"visa-qvsdc", "mastercard-cda", "discover-dda", "maestro-sda"} {
		live, err := kernel(t).Tap(context.Background(), card(t, name))
		require.NoError(t, err, name)
		again, err := kernel(t).Replay(context.Background(), live.Transcript)
		require.NoError(t, err, name)
		require.Equal(t, live.Data, again.Data, name)
		require.Equal(t, live.Records, again.Records, name)
		require.Equal(t, live.CDOL1Data, again.CDOL1Data, name)
		require.Equal(t, live.ODA.Method, again.ODA.Method, name)
	}
}

// FuzzReplay: whatever a transcript file holds, parsing and replaying it
// never panics, and errors are the documented ones. (oda's fuzz targets
// feed Verify.)
func FuzzReplay(f *testing.F) {
	for _, glob := range []string{"../testdata/oda/transcripts/*.json", "../testdata/real/*.json", "testdata/transcripts/*.json"} {
		names, err := filepath.Glob(glob)
		require.NoError(f, err)
		for _, name := range names {
			b, err := os.ReadFile(name)
			require.NoError(f, err)
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, err := emv.ParseTranscript(b)
		if err != nil {
			require.ErrorIs(t, err, emv.ErrTranscript)
			return
		}
		in, err := emv.ODAInputFromTranscript(context.Background(), tr, txDate)
		if err != nil {
			require.True(t, errors.Is(err, emv.ErrTranscript), "%v", err)
			return
		}
		require.Len(t, in.RID, 5)
	})
}
