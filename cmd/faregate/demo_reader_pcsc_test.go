//go:build pcsc

package main

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/faregate/faregate"
	"github.com/faregate/faregate/emv/cardsim"
	"github.com/faregate/faregate/reader"
)

// vpcdSlot is the first slot of vsmartcard-vpcd in the running pcscd.
const vpcdSlot = "Virtual PCD 00 00"

// TestDemoReaderVPCD runs faregate demo --reader against the vpcd slot of
// the running pcscd (.ci/run starts one): with no card the reader step
// fails, naming itself; with the software card served over vpcd, the gate
// reads it through pcscd, journals, uploads and settles it.
func TestDemoReaderVPCD(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	names, err := reader.List(ctx)
	if err != nil || !slices.Contains(names, vpcdSlot) {
		t.Skipf("no pcscd with the vpcd slot %q (readers %v, %v): .ci/run provides one", vpcdSlot, names, err)
	}
	args := []string{"demo", "--reader", vpcdSlot, "--riders", "10", "--days", "2"}

	out, code := run(t, append(args, "--reader-wait", "1s")...)
	require.Equal(t, 1, code, out)
	require.Contains(t, out, `waiting up to 1s for a card on the PC/SC reader "`+vpcdSlot+`"`)
	require.Contains(t, out, "NO  "+stepReader+`: did not happen (no card on "`+vpcdSlot+`" within 1s)`)

	card, err := cardsim.LoadFS(faregate.TestData, "testdata/cards/visa-qvsdc.json", cardsim.Options{})
	require.NoError(t, err)
	p, err := reader.PresentVPCD(ctx, reader.DefaultVPCD, card, nil)
	require.NoError(t, err)
	defer p.Remove()
	out, code = run(t, append(args, "--reader-wait", "30s")...)
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "card on the reader (visa, token ")
	require.Contains(t, out, `the card read on "`+vpcdSlot+`": 1 leg`)
	require.Contains(t, out, "yes "+stepReader+": tapped at G-NORTH, uploaded, charged")
}
