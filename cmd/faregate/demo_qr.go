package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/faregate/faregate/backend"
	"github.com/faregate/faregate/capping"
	"github.com/faregate/faregate/denylist"
	"github.com/faregate/faregate/qr"
	"github.com/faregate/faregate/rider"
	"github.com/faregate/faregate/validator"
)

// demoQRRider travels on a QR code from the app (docs/qr.md) at the
// reduced fare. It is a rider like the others: its card enrols it (one
// tap puts the card in the vault), then the back office certifies the
// app's device key for the card's token (POST /v1/qr/credentials), and the
// QR taps are charged to that card.
type demoQRRider struct {
	rider   *demoRider // the card it enrols with
	devKey  ed25519.PrivateKey
	device  qr.Device // the credential, once issued
	counter uint32
}

// newQRIssuer returns the issuer keys gates trust (the back office's QR
// issuing key) and the QR rider, with a card and a device key of its own.
func newQRIssuer(key ed25519.PrivateKey) (*qr.Issuers, *demoQRRider, error) {
	is, err := qr.NewIssuers(key.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, nil, err
	}
	card, err := personaliseCard("mastercard-cda", 999999)
	if err != nil {
		return nil, nil, fmt.Errorf("QR rider's card: %w", err)
	}
	_, devKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	return is, &demoQRRider{rider: &demoRider{name: "QR rider's card", card: card}, devKey: devKey}, nil
}

// enrolQR: before the first day, the QR rider taps its card once (the
// gate uploads it: the card is in the vault), then its app asks the back
// office for a credential as 'faregate qr issue --backend' does.
func (d *systemDemo) enrolQR(ctx context.Context) error {
	d.at(0, 4, 45)
	if err := d.syncGates(ctx); err != nil {
		return err
	}
	g, r := d.gates[0], d.qrRider
	if err := d.ride(ctx, g, r.rider); err != nil {
		return err
	}
	if _, err := g.upload(ctx); err != nil {
		return err
	}
	d.say("%s: QR rider's card (token %s…): open, uploaded: its card is in the vault", g.id, r.rider.token.String()[:8])
	return d.certifyQR(ctx)
}

// certifyQR has the back office certify the QR rider's app key, as
// 'faregate qr issue --backend' does: at enrolment, and again as the app
// renews its credential while online before it expires (a credential lasts
// at most 31 days, docs/qr.md).
func (d *systemDemo) certifyQR(ctx context.Context) error {
	r := d.qrRider
	pub := r.devKey.Public().(ed25519.PublicKey)
	req := backend.QRIssueRequest{Token: r.rider.token, Device: hex.EncodeToString(pub), Valid: "744h", Category: qr.Reduced.String()}
	cred, err := issueThroughBackend(ctx, d.bo.url, d.keys.operator, req)
	if err != nil {
		return fmt.Errorf("QR rider: %w", err)
	}
	r.device = qr.Device{Credential: *cred, Key: r.devKey}
	d.say("back office: POST /v1/qr/credentials: the QR rider's app key %s… certified for its token, %s, until %s",
		hex.EncodeToString(pub[:4]), cred.Category, cred.NotAfter.In(d.rules.Location).Format("Mon 2 Jan"))
	return nil
}

// heldFor is what the acquirer's ledger holds on tok's card, and how many
// entries took money.
func (a *demoAcquirer) heldFor(tok rider.Token) (capping.Amount, int, error) {
	es, err := a.ledger.entries()
	var sum capping.Amount
	n := 0
	for _, e := range es {
		if e.Token != nil && *e.Token == tok {
			sum += e.Effect
			if e.Effect != 0 {
				n++
			}
		}
	}
	return sum, n, err
}

// newQRGate is a gate's QR reader, as faregate validator --qr-from builds it.
func newQRGate(is *qr.Issuers, replica *denylist.Replica, now func() time.Time) (*qr.Gate, error) {
	return qr.NewGate(qr.GateOptions{Issuers: is, DenyList: replica, Now: now})
}

// qrRide shows the app's next code at g.
func (d *systemDemo) qrRide(ctx context.Context, g *demoGate) error {
	r := d.qrRider
	if d.clock.Now().Add(48 * time.Hour).After(r.device.Credential.NotAfter) {
		// The back office certifies a device key once: the app renews
		// with a new key, and its counter starts again.
		var err error
		if _, r.devKey, err = ed25519.GenerateKey(rand.Reader); err != nil {
			return err
		}
		r.counter = 0
		if err := d.certifyQR(ctx); err != nil {
			return err
		}
	}
	r.counter++
	payload, err := r.device.Code(d.clock.Now().Add(-2*time.Second), r.counter, nil)
	if err != nil {
		return err
	}
	o := g.station.TapQR(ctx, qr.Text(payload))
	if o.Err != nil {
		return fmt.Errorf("QR rider at %s: %w", g.id, o.Err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.taps++
	if o.Verdict != validator.Open {
		d.refused[string(o.Reason)]++
		return fmt.Errorf("QR rider at %s: refused (%s)", g.id, o.Reason)
	}
	d.opened[g.id]++
	d.qrOpened++
	t := capping.Tap{Token: o.Token.String(), Time: o.Time, Mode: "bus", Category: qr.Reduced.String()}
	if err := d.rules.Resolve(&t); err != nil {
		return err
	}
	d.accepted = append(d.accepted, t)
	return nil
}

// demoRulesJSON: TfL's bus and tram fares and caps, with a reduced fare and
// its caps for the QR rider's category.
const demoRulesJSON = `{
  "currency": "GBP",
  "time_zone": "Europe/London",
  "service_day_start": "04:30",
  "week_start": "monday",
  "fares": [
    {"id": "bus-tram-reduced", "modes": ["bus", "tram"], "categories": ["reduced"], "price": "0.85"},
    {"id": "bus-tram", "modes": ["bus", "tram"], "price": "1.75"}
  ],
  "caps": [
    {"id": "bus-tram-reduced-day", "amount": "2.55", "period": {"kind": "service_day"}, "modes": ["bus", "tram"], "categories": ["reduced"]},
    {"id": "bus-tram-day", "amount": "5.25", "period": {"kind": "service_day"}, "modes": ["bus", "tram"]},
    {"id": "bus-tram-week", "amount": "24.70", "period": {"kind": "calendar_week"}, "modes": ["bus", "tram"]}
  ],
  "transfers": [
    {"id": "hopper", "window_minutes": 60, "measured_from": "first_tap",
     "from_modes": ["bus", "tram"], "to_modes": ["bus", "tram"],
     "price": "free", "counts_toward_caps": true}
  ]
}`
