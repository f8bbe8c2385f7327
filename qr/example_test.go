package qr_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"time"

	"github.com/faregate/faregate/qr"
	"github.com/faregate/faregate/rider"
)

// The whole life of a code: the back office issues a credential, the app
// shows codes, a gate accepts one provisionally, the back office verifies
// the uploaded tap.
func Example() {
	issuerPub, issuerKey, _ := ed25519.GenerateKey(nil)
	tapTime := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)

	// Back office: certify the app's device key for the rider's token.
	devicePub, deviceKey, _ := ed25519.GenerateKey(nil)
	token := rider.NewToken([]byte("agency token key"), "account 42", "00")
	cred := qr.Credential{Token: token, Device: qr.DeviceKey(devicePub),
		NotBefore: tapTime.Add(-time.Hour), NotAfter: tapTime.Add(30 * 24 * time.Hour), Category: qr.Adult}
	if err := cred.Sign(issuerKey); err != nil {
		panic(err)
	}
	store := qr.NewMemStore()
	store.Issue(qr.Issued{Token: token, Device: cred.Device, IssuedAt: cred.NotBefore})

	// App, offline: the next code (counter stored before it is shown).
	app := qr.Device{Credential: cred, Key: deviceKey}
	payload, _ := app.Code(tapTime.Add(-4*time.Second), 1, nil)
	text := qr.Text(payload) // what the QR code holds

	// Gate, offline.
	issuers, _ := qr.NewIssuers(issuerPub)
	gate, _ := qr.NewGate(qr.GateOptions{Issuers: issuers, Now: func() time.Time { return tapTime }})
	code, err := gate.VerifyText(text)
	fmt.Println("gate:", err == nil, code.Counter)
	_, err = gate.VerifyText(text)
	fmt.Println("again:", qr.ReasonOf(err))

	// Back office, on upload.
	bo, _ := qr.NewBackOffice(qr.BackOfficeOptions{Issuers: issuers, Store: store})
	_, err = bo.Verify(context.Background(), qr.Upload{TapID: "gate-7/1001", Payload: code.Payload(), At: tapTime})
	fmt.Println("back office:", err == nil)
	_, err = bo.Verify(context.Background(), qr.Upload{TapID: "gate-9/88", Payload: code.Payload(), At: tapTime.Add(20 * time.Second)})
	fmt.Println("same code at another gate:", qr.ReasonOf(err))
	// Output:
	// gate: true 1
	// again: replay
	// back office: true
	// same code at another gate: replay
}
