//go:build pcsc

package reader

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ebfe/scard"
	"github.com/stretchr/testify/require"
)

// otherClient is a second PC/SC client on the gate (another program)
// connected to the same card, in shared mode.
func otherClient(t *testing.T) *scard.Card {
	t.Helper()
	sc, err := scard.EstablishContext()
	require.NoError(t, err)
	t.Cleanup(func() { sc.Release() })
	rs := []scard.ReaderState{{Reader: pcsc.reader, CurrentState: scard.StateUnaware}}
	for deadline := time.Now().Add(10 * time.Second); rs[0].EventState&scard.StatePresent == 0; {
		require.True(t, time.Now().Before(deadline), "no card in %q", pcsc.reader)
		rs[0].CurrentState = rs[0].EventState &^ scard.StateChanged
		if err := sc.GetStatusChange(rs, time.Second); err != nil && !errors.Is(err, scard.ErrTimeout) {
			require.NoError(t, err)
		}
	}
	c, err := sc.Connect(pcsc.reader, scard.ShareShared, scard.ProtocolT1|scard.ProtocolT0)
	require.NoError(t, err)
	t.Cleanup(func() { c.Disconnect(scard.LeaveCard) })
	return c
}

func echo(data string) []byte {
	return append(append([]byte{0x80, insEcho, 0, 0, byte(len(data))}, data...), 0)
}

// TestTapHoldsTheCard: while a tap is under way, a second PC/SC client's
// APDU waits: the card sees every APDU of the tap first, then the other
// client's, once the tap ends its transaction.
func TestTapHoldsTheCard(t *testing.T) {
	r := openReader(t, Options{})
	card := newTestCard(atrT1)
	present(t, card, nil)
	other := otherClient(t) // connected before the tap (pcscd holds off new connections during one)
	s := waitCard(t, r)     // holds the transaction from here

	done := make(chan error, 1)
	go func() {
		rsp, err := other.Transmit(echo("other"))
		if err == nil && string(rsp) != "other\x90\x00" {
			err = fmt.Errorf("other client got %X", rsp)
		}
		done <- err
	}()
	for i := range 5 {
		require.Equal(t, append([]byte(fmt.Sprint("tap", i)), 0x90, 0x00), transmit(t, s, echo(fmt.Sprint("tap", i))...))
		time.Sleep(40 * time.Millisecond) // room for the other client to cut in, were it able to
	}
	select {
	case err := <-done:
		t.Fatalf("the other client reached the card mid-tap (err %v)", err)
	default:
	}
	require.NoError(t, s.End())
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("the other client never got the card after the tap")
	}
	require.Equal(t, []string{"tap0", "tap1", "tap2", "tap3", "tap4", "other"}, card.echoed())
	require.NoError(t, s.End(), "ending twice")
	require.NoError(t, s.Close())
}

// TestResetByAnotherClient: a card another program reset before the tap
// began is reconnected once and the tap runs (piv-go's handling of
// SCARD_W_RESET_CARD); a reset cannot cut into a tap that holds the card.
func TestResetByAnotherClient(t *testing.T) {
	r := openReader(t, Options{})
	card := newTestCard(atrT1)
	present(t, card, nil)
	other := otherClient(t)
	s := waitCard(t, r)
	require.NoError(t, s.End())

	require.NoError(t, other.Reconnect(scard.ShareShared, scard.ProtocolT1|scard.ProtocolT0, scard.ResetCard))
	_, _, resets, _ := card.counts()
	require.GreaterOrEqual(t, resets, 1, "the other client reset the card")

	// The gate's handle saw the reset: its next transaction reconnects.
	s.mu.Lock()
	err := s.begin(t.Context())
	s.mu.Unlock()
	require.NoError(t, err)
	require.Equal(t, []byte("after\x90\x00"), transmit(t, s, echo("after")...))

	// While the gate holds the card, the other client cannot reset it.
	resetDone := make(chan error, 1)
	go func() {
		resetDone <- other.Reconnect(scard.ShareShared, scard.ProtocolT1|scard.ProtocolT0, scard.ResetCard)
	}()
	time.Sleep(200 * time.Millisecond)
	require.Equal(t, []byte("still\x90\x00"), transmit(t, s, echo("still")...), "no reset cut into the tap")
	require.NoError(t, s.End())
	select {
	case err := <-resetDone:
		if err != nil && !errors.Is(err, scard.ErrSharingViolation) {
			t.Fatalf("other client's reset: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the other client's reset never returned")
	}
}
