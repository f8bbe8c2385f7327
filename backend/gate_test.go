package backend

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/faregate/faregate/capping"
	"github.com/faregate/faregate/rider"
	"github.com/faregate/faregate/tap"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// testGate is a gate as the back office sees one: it journals taps with
// real sealed card data and uploads them in signed batches over real HTTP.
type testGate struct {
	id    string
	key   ed25519.PrivateKey
	seq   uint64
	vault *ecdh.PublicKey
}

var testTokenKey = []byte("agency token key for tests")

func newTestGate(t testing.TB, s Store, id string, vault *ecdh.PublicKey) *testGate {
	pub, key, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	require.NoError(t, s.AddGate(context.Background(), id, pub, st0))
	return &testGate{id: id, key: key, vault: vault}
}

// card is a test card: its PAN and token.
type card struct {
	pan   string
	token rider.Token
}

func testCard(i int) card {
	pan := fmt.Sprintf("4761739%09d", i)
	return card{pan: pan, token: rider.NewToken(testTokenKey, pan, "00")}
}

// tap journals one opened tap of c at time at.
func (g *testGate) tap(t testing.TB, c card, at time.Time, mode string, zones ...string) tap.Record {
	g.seq++
	id := uuid.Must(uuid.NewV7())
	var sealed []byte
	if g.vault != nil {
		var err error
		sealed, err = tap.SealCardData(g.vault, g.id, id, tap.CardData{PAN: c.pan, PSN: "00", Expiry: "291231", Track2: []byte{0x47, 0x61}, Scheme: "visa"})
		require.NoError(t, err)
	}
	return tap.Record{
		ID: id, Gate: g.id, Seq: g.seq, Time: at.UTC(), LocalTime: at.Format(time.RFC3339Nano),
		Location: tap.Location{Operator: "metro", Stop: "Stop " + g.id, Zones: zones, Mode: mode, Role: tap.RoleEntry},
		Kind:     tap.KindEMV, Token: c.token, MaskedPAN: c.pan[:6] + "******" + c.pan[12:], Scheme: "visa",
		ODA: tap.ODA{Method: "fDDA", OK: true}, Decision: tap.Open, Reason: "ok", Sealed: sealed,
	}
}

// post uploads records as one signed batch at time now.
func (g *testGate) post(t testing.TB, client *http.Client, base string, now time.Time, recs []tap.Record) (*http.Response, []byte) {
	body, err := json.Marshal(tap.Batch{Gate: g.id, Taps: recs, Backlog: int64(len(recs))})
	require.NoError(t, err)
	return g.postBody(t, client, base, now, body)
}

func (g *testGate) postBody(t testing.TB, client *http.Client, base string, now time.Time, body []byte) (*http.Response, []byte) {
	req, err := http.NewRequest("POST", base+"/v1/taps", bytes.NewReader(body))
	require.NoError(t, err)
	tap.SignRequest(req, g.id, g.key, now, body)
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, out
}

// upload posts recs and requires a 200 naming every one of them.
func (g *testGate) upload(t testing.TB, base string, now time.Time, recs []tap.Record) tap.Ack {
	resp, body := g.post(t, http.DefaultClient, base, now, recs)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	var ack tap.Ack
	require.NoError(t, json.Unmarshal(body, &ack))
	require.Len(t, ack.Stored, len(recs))
	for i := range recs {
		require.Equal(t, recs[i].ID, ack.Stored[i])
	}
	return ack
}

// testClock is a settable clock shared by ingest and settlement.
type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time { return c.t }

// capTaps turns stored records into the capping engine's taps the way
// settlement does.
func capTaps(recs []tap.Record) []capping.Tap {
	var out []capping.Tap
	for i := range recs {
		r := &recs[i]
		if isLeg(r) {
			out = append(out, capping.Tap{Token: r.Token.String(), Time: r.Time, Mode: r.Location.Mode, Category: r.Category, Zones: r.Location.Zones,
				Role: string(r.Location.Role), Stop: r.Location.Stop})
		}
	}
	return out
}
