// Package qr implements offline QR fare credentials (docs/qr.md): a rider
// without a contactless card shows a code that a gate checks with no
// network, and the back office verifies for real when the tap is uploaded.
//
// The back office certifies a device's Ed25519 key for a rider token
// (Credential.Sign); the app makes codes with Device.Code and shows
// Text(payload) as a QR code; the gate checks them with Gate.VerifyText
// (issuer key and signature, device signature, validity, ±window around
// its clock, deny list, counter replay at this gate); the back office
// checks uploaded taps with BackOffice.Verify (the key was issued to that
// token and not revoked at tap time, counter replay across all gates).
// Refusals are *Error values with a stable Reason.
package qr
