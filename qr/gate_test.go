package qr_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/faregate/faregate/qr"
	"github.com/stretchr/testify/require"
)

func newGate(t testing.TB, o qr.GateOptions) (*qr.Gate, *clock) {
	t.Helper()
	c := &clock{t: t0}
	if o.Issuers == nil {
		o.Issuers = issuers(t, testKey("issuer 1"))
	}
	o.Now = c.Now
	g, err := qr.NewGate(o)
	require.NoError(t, err)
	return g, c
}

func TestGateAccepts(t *testing.T) {
	g, _ := newGate(t, qr.GateOptions{})
	d := newDevice(t, testKey("issuer 1"), "alice")
	c, err := g.Verify(code(t, d, t0.Add(-5*time.Second), 1, nil))
	require.NoError(t, err)
	require.Equal(t, testToken("alice"), c.Credential.Token)
	require.Equal(t, uint32(1), c.Counter)
	require.Equal(t, qr.Adult, c.Credential.Category)

	c, err = g.VerifyText(qr.Text(code(t, d, t0, 2, nil)) + "\n")
	require.NoError(t, err)
	require.Equal(t, uint32(2), c.Counter)
	s := g.Stats()
	require.Equal(t, uint64(2), s.Accepted)
	require.Equal(t, 1, s.Devices)
}

func TestGateRefusals(t *testing.T) {
	issuer, other := testKey("issuer 1"), testKey("issuer 2")
	d := newDevice(t, issuer, "alice")

	forgedCred := *d // a credential someone signed with their own key
	require.NoError(t, forgedCred.Credential.Sign(other))
	tampered := code(t, d, t0, 1, nil)
	tampered[20] ^= 1 // device key altered: the issuer signature no longer covers it
	badIssuerSig := code(t, d, t0, 1, nil)
	badIssuerSig[70] ^= 1
	badDeviceSig := code(t, d, t0, 1, nil)
	badDeviceSig[len(badDeviceSig)-1] ^= 1
	counterChanged := code(t, d, t0, 1, nil)
	counterChanged[131] = 2 // counter 1 → 2 after signing
	wrongDevice := *d       // right credential, codes signed by another device key
	wrongDevice.Key = testKey("thief")

	expired := newDevice(t, issuer, "bob")
	expired.Credential.NotAfter = t0.Add(-time.Second)
	require.NoError(t, expired.Credential.Sign(issuer))
	early := newDevice(t, issuer, "carol")
	early.Credential.NotBefore = t0.Add(time.Second)
	require.NoError(t, early.Credential.Sign(issuer))

	for name, tc := range map[string]struct {
		payload []byte
		want    qr.Reason
	}{
		"unknown key id":           {code(t, &forgedCred, t0, 1, nil), qr.ReasonUnknownKeyID},
		"forged credential":        {tampered, qr.ReasonBadIssuerSignature},
		"bad issuer signature":     {badIssuerSig, qr.ReasonBadIssuerSignature},
		"bad device signature":     {badDeviceSig, qr.ReasonBadDeviceSignature},
		"dynamic part altered":     {counterChanged, qr.ReasonBadDeviceSignature},
		"signed by another device": {forgeDevice(t, &wrongDevice, t0, 1), qr.ReasonBadDeviceSignature},
		"expired credential":       {code(t, expired, t0, 1, nil), qr.ReasonExpired},
		"credential not yet valid": {code(t, early, t0, 1, nil), qr.ReasonNotYetValid},
		"malformed":                {code(t, d, t0, 1, nil)[:100], qr.ReasonMalformed},
	} {
		t.Run(name, func(t *testing.T) {
			g, _ := newGate(t, qr.GateOptions{})
			_, err := g.Verify(tc.payload)
			requireReason(t, tc.want, err)
			require.Equal(t, uint64(1), g.Stats().Refused[tc.want])
			require.Zero(t, g.Stats().Devices, "a refused code is not remembered")
		})
	}
}

// forgeDevice makes a code for d's credential signed with d.Key, which is
// not the credential's device key (what a thief without the key can do).
func forgeDevice(t *testing.T, d *qr.Device, at time.Time, counter uint32) []byte {
	t.Helper()
	own := newDevice(t, testKey("issuer 1"), "thief")
	own.Key = d.Key
	own.Credential.Device = qr.DeviceKey(pubOf(d.Key))
	b := code(t, own, at, counter, nil)
	cred, err := d.Credential.MarshalBinary()
	require.NoError(t, err)
	copy(b, cred) // the victim's credential, the thief's signature
	return b
}

func TestGateCredentialCacheDoesNotHideForgery(t *testing.T) {
	g, _ := newGate(t, qr.GateOptions{})
	d := newDevice(t, testKey("issuer 1"), "alice")
	_, err := g.Verify(code(t, d, t0, 1, nil))
	require.NoError(t, err)
	b := code(t, d, t0, 2, nil)
	b[100] ^= 1 // issuer signature
	_, err = g.Verify(b)
	requireReason(t, qr.ReasonBadIssuerSignature, err)
	b = code(t, d, t0, 3, nil)
	b[5] ^= 1 // token
	_, err = g.Verify(b)
	requireReason(t, qr.ReasonBadIssuerSignature, err)
	_, err = g.Verify(code(t, d, t0, 4, nil))
	require.NoError(t, err)
}

func TestGateClockWindowEdges(t *testing.T) {
	d := newDevice(t, testKey("issuer 1"), "alice")
	for _, tc := range []struct {
		name   string
		window time.Duration
		skew   time.Duration // code time − gate clock
		ok     bool
	}{
		{"on time", 0, 0, true},
		{"default window, code behind, edge", 0, -qr.DefaultWindow, true},
		{"default window, code behind, past edge", 0, -qr.DefaultWindow - time.Second, false},
		{"default window, code ahead, edge", 0, qr.DefaultWindow, true},
		{"default window, code ahead, past edge", 0, qr.DefaultWindow + time.Second, false},
		{"30 s window, behind, edge", 30 * time.Second, -30 * time.Second, true},
		{"30 s window, behind, past", 30 * time.Second, -31 * time.Second, false},
		{"30 s window, ahead, edge", 30 * time.Second, 30 * time.Second, true},
		{"30 s window, ahead, past", 30 * time.Second, 31 * time.Second, false},
		{"a day behind", 0, -24 * time.Hour, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, _ := newGate(t, qr.GateOptions{Window: tc.window})
			_, err := g.Verify(code(t, d, t0.Add(tc.skew), 1, nil))
			if tc.ok {
				require.NoError(t, err)
				return
			}
			requireReason(t, qr.ReasonClockSkew, err)
		})
	}
	// Sub-second gate clock: the edge is exact, not rounded in the code's favour.
	g, clk := newGate(t, qr.GateOptions{})
	clk.t = t0.Add(qr.DefaultWindow + time.Millisecond)
	_, err := g.Verify(code(t, d, t0, 1, nil))
	requireReason(t, qr.ReasonClockSkew, err)
}

func TestGateReplay(t *testing.T) {
	g, clk := newGate(t, qr.GateOptions{})
	alice := newDevice(t, testKey("issuer 1"), "alice")
	bob := newDevice(t, testKey("issuer 1"), "bob")
	first := code(t, alice, t0, 10, nil)
	_, err := g.Verify(first)
	require.NoError(t, err)

	_, err = g.Verify(first)
	requireReason(t, qr.ReasonReplay, err)
	_, err = g.VerifyText(qr.Text(first))
	requireReason(t, qr.ReasonReplay, err)
	// Same counter, later time: still a replay (only the device can sign,
	// so this is an app that reused a counter).
	_, err = g.Verify(code(t, alice, t0.Add(5*time.Second), 10, nil))
	requireReason(t, qr.ReasonReplay, err)
	// A lower counter (an older screenshot) is refused as well.
	_, err = g.Verify(code(t, alice, t0, 9, nil))
	requireReason(t, qr.ReasonReplay, err)
	// Another device with the same counter is fine; the next counter too.
	_, err = g.Verify(code(t, bob, t0, 10, nil))
	require.NoError(t, err)
	_, err = g.Verify(code(t, alice, t0, 11, nil))
	require.NoError(t, err)

	// Once the window has passed the entry is forgotten; an old code is
	// refused by its time instead.
	clk.t = t0.Add(qr.DefaultWindow + time.Second)
	_, err = g.Verify(first)
	requireReason(t, qr.ReasonClockSkew, err)
	require.Empty(t, g.Snapshot())
	_, err = g.Verify(code(t, alice, clk.t, 3, nil))
	require.NoError(t, err, "a device whose counter was reset (app reinstalled) works once the window has passed")
}

func TestGateDenyList(t *testing.T) {
	deny := denySet{testToken("mallory"): true}
	g, _ := newGate(t, qr.GateOptions{DenyList: deny})
	_, err := g.Verify(code(t, newDevice(t, testKey("issuer 1"), "mallory"), t0, 1, nil))
	requireReason(t, qr.ReasonRevoked, err)
	_, err = g.Verify(code(t, newDevice(t, testKey("issuer 1"), "alice"), t0, 1, nil))
	require.NoError(t, err)
	delete(deny, testToken("mallory")) // debt paid
	_, err = g.Verify(code(t, newDevice(t, testKey("issuer 1"), "mallory"), t0, 2, nil))
	require.NoError(t, err)
}

func TestGateChallenge(t *testing.T) {
	g, _ := newGate(t, qr.GateOptions{})
	d := newDevice(t, testKey("issuer 1"), "alice")
	_, err := g.VerifyChallenge(code(t, d, t0, 1, []byte("abc")), []byte("abd"))
	requireReason(t, qr.ReasonChallenge, err)
	_, err = g.VerifyChallenge(code(t, d, t0, 2, nil), []byte("abd"))
	requireReason(t, qr.ReasonChallenge, err)
	_, err = g.VerifyChallenge(code(t, d, t0, 3, []byte("abd")), []byte("abd"))
	require.NoError(t, err)
}

func TestGateKeyRotation(t *testing.T) {
	oldKey, newKey := testKey("issuer 1"), testKey("issuer 2")
	g, _ := newGate(t, qr.GateOptions{Issuers: issuers(t, oldKey, newKey)})
	_, err := g.Verify(code(t, newDevice(t, oldKey, "alice"), t0, 1, nil))
	require.NoError(t, err)
	_, err = g.Verify(code(t, newDevice(t, newKey, "bob"), t0, 1, nil))
	require.NoError(t, err)
	require.NoError(t, g.SetIssuers(issuers(t, newKey)))
	_, err = g.Verify(code(t, newDevice(t, oldKey, "alice"), t0, 2, nil))
	requireReason(t, qr.ReasonUnknownKeyID, err)
}

type memJournal struct {
	seen []qr.Seen
	fail error
}

func (j *memJournal) Record(s qr.Seen) error {
	if j.fail != nil {
		return j.fail
	}
	j.seen = append(j.seen, s)
	return nil
}

func TestGateJournalAndRestore(t *testing.T) {
	j := &memJournal{}
	g, _ := newGate(t, qr.GateOptions{Journal: j})
	d := newDevice(t, testKey("issuer 1"), "alice")
	c5 := code(t, d, t0, 5, nil)
	_, err := g.Verify(c5)
	require.NoError(t, err)
	require.Equal(t, []qr.Seen{{Device: d.Credential.Device, Counter: 5, Time: t0}}, j.seen)

	// A restarted gate fed the journal refuses the replay.
	g2, clk := newGate(t, qr.GateOptions{})
	clk.t = t0.Add(10 * time.Second)
	g2.Restore(j.seen)
	_, err = g2.Verify(c5)
	requireReason(t, qr.ReasonReplay, err)
	require.Len(t, g2.Snapshot(), 1)

	// The same from the accepted payloads themselves (a daemon's tap journal).
	g4, clk := newGate(t, qr.GateOptions{})
	clk.t = t0.Add(30 * time.Second)
	parsed, err := qr.ParseBinary(c5)
	require.NoError(t, err)
	g4.Restore([]qr.Seen{parsed.Seen()})
	_, err = g4.Verify(c5)
	requireReason(t, qr.ReasonReplay, err)

	// Entries past the window are not restored.
	g3, clk := newGate(t, qr.GateOptions{})
	clk.t = t0.Add(qr.DefaultWindow + time.Second)
	g3.Restore(j.seen)
	require.Empty(t, g3.Snapshot())

	// A journal that cannot write refuses the code, and the gate does not
	// remember it.
	j.fail = errors.New("disk full")
	_, err = g.Verify(code(t, d, t0, 6, nil))
	require.ErrorContains(t, err, "disk full")
	require.Equal(t, qr.Reason(""), qr.ReasonOf(err))
	require.Equal(t, uint64(1), g.Stats().Refused["journal"])
	j.fail = nil
	_, err = g.Verify(code(t, d, t0, 6, nil))
	require.NoError(t, err)
}

func TestGateMemoryIsBounded(t *testing.T) {
	g, _ := newGate(t, qr.GateOptions{MaxDevices: 3})
	var devs []*qr.Device
	for i, name := range []string{"a", "b", "c", "d"} {
		d := newDevice(t, testKey("issuer 1"), name)
		devs = append(devs, d)
		_, err := g.Verify(code(t, d, t0.Add(time.Duration(i)*time.Second), 1, nil))
		require.NoError(t, err)
	}
	s := g.Stats()
	require.Equal(t, 3, s.Devices)
	require.Equal(t, uint64(1), s.Evicted)
	// The entry that expires first (device a) was dropped: the gate no
	// longer catches its replay (the back office does).
	_, err := g.Verify(code(t, devs[0], t0, 1, nil))
	require.NoError(t, err)
	_, err = g.Verify(code(t, devs[3], t0.Add(3*time.Second), 1, nil))
	requireReason(t, qr.ReasonReplay, err)
}

func TestNewGateNeedsIssuers(t *testing.T) {
	_, err := qr.NewGate(qr.GateOptions{})
	require.Error(t, err)
	empty, err := qr.NewIssuers()
	require.NoError(t, err)
	_, err = qr.NewGate(qr.GateOptions{Issuers: empty})
	require.Error(t, err)
	var _ qr.DenyList = denySet{}
}

// TestGateConcurrentReplay: a code verified from many goroutines at once
// opens the gate exactly once.
func TestGateConcurrentReplay(t *testing.T) {
	g, _ := newGate(t, qr.GateOptions{})
	d := newDevice(t, testKey("issuer 1"), "alice")
	payloads := [][]byte{code(t, d, t0, 1, nil), code(t, d, t0, 2, nil), code(t, d, t0, 3, nil)}
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted := map[uint32]int{}
	for range 8 {
		wg.Go(func() {
			for _, p := range payloads {
				c, err := g.Verify(p)
				if err == nil {
					mu.Lock()
					accepted[c.Counter]++
					mu.Unlock()
				} else if qr.ReasonOf(err) != qr.ReasonReplay {
					t.Errorf("unexpected refusal: %v", err)
				}
			}
		})
	}
	wg.Wait()
	total := 0
	for c, n := range accepted {
		require.Equal(t, 1, n, "counter %d accepted %d times", c, n)
		total += n
	}
	require.GreaterOrEqual(t, total, 1)
	s := g.Stats()
	require.Equal(t, uint64(total), s.Accepted)
	require.Equal(t, uint64(24-total), s.Refused[qr.ReasonReplay])
}

func TestGateValidityEdges(t *testing.T) {
	d := newDevice(t, testKey("issuer 1"), "alice")
	nb, na := d.Credential.NotBefore, d.Credential.NotAfter
	for i, tc := range []struct {
		at   time.Time
		want qr.Reason
	}{
		{nb.Add(-time.Nanosecond), qr.ReasonNotYetValid},
		{nb, ""},
		{na, ""},
		{na.Add(time.Second - time.Nanosecond), ""}, // not after is inclusive to the whole second
		{na.Add(time.Second), qr.ReasonExpired},
	} {
		g, clk := newGate(t, qr.GateOptions{})
		clk.t = tc.at
		_, err := g.Verify(code(t, d, tc.at.Truncate(time.Second), uint32(i+1), nil))
		require.Equal(t, tc.want, qr.ReasonOf(err), "at %s: %v", tc.at, err)
		if tc.want == "" {
			require.NoError(t, err)
		}
	}
}
