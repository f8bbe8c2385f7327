package tap_test

import (
	"os"
	"testing"

	"github.com/faregate/faregate/tap"
	"github.com/stretchr/testify/require"
)

// testdata/batch-v1.json is the example in docs/api.md: it must stay a
// valid batch of gate G-001.
func TestGoldenBatch(t *testing.T) {
	body, err := os.ReadFile("testdata/batch-v1.json")
	require.NoError(t, err)
	b, err := tap.DecodeBatch(body, "G-001")
	require.NoError(t, err)
	require.Len(t, b.Taps, 2)
	require.Equal(t, tap.Open, b.Taps[0].Decision)
	require.Equal(t, tap.Reject, b.Taps[1].Decision)
	require.Equal(t, "denied", b.Taps[1].Reason)
	require.Empty(t, b.Taps[1].Sealed)
}
