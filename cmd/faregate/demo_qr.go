package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
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
// reduced fare: a credential the back office certified for the rider's
// token and category, and the device key that signs each code.
type demoQRRider struct {
	device  qr.Device
	counter uint32
}

// newQRIssuer makes the back office's QR issuer key and one rider's app.
func newQRIssuer(tokenKey []byte, from time.Time) (*qr.Issuers, *demoQRRider, error) {
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	is, err := qr.NewIssuers(pub)
	if err != nil {
		return nil, nil, err
	}
	devPub, devKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	cred := qr.Credential{Token: rider.NewToken(tokenKey, "qr account 1", "00"), Device: qr.DeviceKey(devPub),
		NotBefore: from.Add(-time.Hour), NotAfter: from.AddDate(0, 0, 30), Category: qr.Reduced}
	if err := cred.Sign(key); err != nil {
		return nil, nil, err
	}
	return is, &demoQRRider{device: qr.Device{Credential: cred, Key: devKey}}, nil
}

// issueQR records the QR rider's credential as the back office's issuing
// does (POST /v1/qr/credentials, which also wants a card in the vault: the
// demo's QR account has none), so its uploaded taps are confirmed.
func (b *demoBackOffice) issueQR(ctx context.Context, c qr.Credential) error {
	qs, ok := b.store.(backend.QRStore)
	if !ok {
		return fmt.Errorf("demo: the store keeps no QR credentials")
	}
	return qs.IssueQR(ctx, backend.QRCredential{Issued: qr.Issued{Token: c.Token, Device: c.Device, IssuedAt: c.NotBefore},
		KeyID: c.KeyID, NotBefore: c.NotBefore, NotAfter: c.NotAfter, Category: c.Category})
}

// newQRGate is a gate's QR reader, as faregate validator --qr-from builds it.
func newQRGate(is *qr.Issuers, replica *denylist.Replica, now func() time.Time) (*qr.Gate, error) {
	return qr.NewGate(qr.GateOptions{Issuers: is, DenyList: replica, Now: now})
}

// qrRide shows the app's next code at g.
func (d *systemDemo) qrRide(ctx context.Context, g *demoGate) error {
	r := d.qrRider
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
