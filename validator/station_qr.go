package validator

import (
	"context"
	"fmt"
	"time"

	"github.com/faregate/faregate/emv/tapdata"
	"github.com/faregate/faregate/qr"
	"github.com/faregate/faregate/tap"
)

// SchemeQR is the scheme of a QR tap in outcomes, records and metrics.
const SchemeQR = "qr"

// ReasonQRNotAccepted: a QR code was presented to a station without a QR
// verifier. Not journaled.
const ReasonQRNotAccepted Reason = "qr_not_accepted"

// qrMessage is the rider-facing text of a QR refusal.
func qrMessage(v Verdict, r Reason, role tap.Role) string {
	if v != Reject {
		return Message(v, r, role)
	}
	switch qr.Reason(r) {
	case qr.ReasonMalformed, qr.ReasonUnsupportedVersion:
		return "Code not recognised – show the fare code"
	case qr.ReasonExpired, qr.ReasonNotYetValid:
		return "Code expired – go online in the app to renew it"
	case qr.ReasonClockSkew:
		return "Code out of date – show a fresh code"
	case qr.ReasonReplay:
		return "Code already used – show a fresh code"
	case qr.ReasonChallenge:
		return "Show a fresh code"
	case qr.ReasonRevoked:
		return "Code declined – see staff"
	case qr.ReasonUnknownKeyID, qr.ReasonBadIssuerSignature, qr.ReasonBadDeviceSignature, qr.ReasonNotIssued:
		return "Code not accepted – see staff"
	}
	switch r {
	case ReasonQRNotAccepted:
		return "QR codes not accepted here"
	case ReasonAlreadyTapped, ReasonOutOfService, ReasonDenyListStale:
		return Message(v, r, role)
	}
	return "Code not accepted – see staff"
}

// qrAuthenticated says whether a code refused for r had its issuer and
// device signatures checked, so that its token and category are the
// credential's and not whatever the bytes claim.
func qrAuthenticated(r qr.Reason) bool {
	switch r {
	case qr.ReasonNotYetValid, qr.ReasonExpired, qr.ReasonClockSkew, qr.ReasonChallenge, qr.ReasonRevoked, qr.ReasonReplay:
		return true
	}
	return false
}

// restoreQR reloads the QR replay memory from the journal's opened QR
// taps of the last two windows: a code's time is within one window of its
// tap's, and the memory keeps an entry one window past the code's time.
func (s *Station) restoreQR(ctx context.Context) error {
	since := s.o.Now().Add(-2 * s.o.QR.Window())
	var seen []qr.Seen
	err := s.o.Journal.RecentQR(ctx, since, func(payload []byte) {
		if c, err := qr.ParseBinary(payload); err == nil {
			seen = append(seen, c.Seen())
		}
	})
	if err != nil {
		return err
	}
	s.o.QR.Restore(seen)
	return nil
}

// TapQR decides the text a QR scanner read and journals it: the code is
// verified offline by the station's qr.Gate (signatures, validity, time
// window, deny list, counter replay at this gate), pass-back applies to
// its token, and the tap is committed as a provisional tap.KindQR record
// carrying the payload before the outcome is returned. Text that is not a
// payload at all is refused (malformed) and not journaled: it is no fare
// event and carries nothing the back office could verify
// (docs/validator.md).
func (s *Station) TapQR(ctx context.Context, text string) Outcome {
	start := time.Now()
	now := s.o.Now()
	out := Outcome{Time: now.UTC(), Scheme: SchemeQR}
	refuse := func(r Reason) Outcome {
		out.Verdict, out.Reason = Reject, r
		out.Message = qrMessage(Reject, r, s.o.Location.Role)
		s.o.Metrics.tapDecided(string(Reject), string(r), SchemeQR, time.Since(start), -1)
		return out
	}
	if s.o.QR == nil {
		return refuse(ReasonQRNotAccepted)
	}
	var (
		code  *qr.Code
		err   error
		stale = s.o.QRStale != nil && s.o.QRStale()
	)
	if stale {
		// Refused before the verifier: the code's counter is not used up.
		code, err = qr.Parse(text)
	} else {
		code, err = s.o.QR.VerifyText(text)
	}
	if code == nil {
		r := qr.ReasonOf(err)
		if r == "" {
			r = qr.ReasonMalformed
		}
		return refuse(Reason(r))
	}
	category := ""
	switch r := qr.ReasonOf(err); {
	case stale:
		out.Verdict, out.Reason = Reject, ReasonDenyListStale
	case err == nil:
		out.Verdict, out.Reason = Open, ReasonOK
	case r == "":
		// Not a refusal of the code: the verifier's own failure.
		out.Verdict, out.Reason = Reject, ReasonOutOfService
	default:
		out.Verdict, out.Reason = Reject, Reason(r)
	}
	if err == nil && !stale || qrAuthenticated(qr.ReasonOf(err)) {
		out.Token = code.Credential.Token
		category = code.Credential.Category.String()
	}
	if out.Verdict == Open && s.passback != nil && s.passback.seen(out.Token, now) {
		out.Verdict, out.Reason = Reject, ReasonAlreadyTapped
	}
	decided := time.Now()
	r, err := s.recordQR(now, decided.Sub(start), &out, code, category)
	sealed, committed, err := s.commit(ctx, r, err)
	if err != nil {
		s.o.Metrics.journalFailed()
		out.Err = err
		return refuse(ReasonOutOfService)
	}
	out.Record = r
	out.Message = qrMessage(out.Verdict, out.Reason, s.o.Location.Role)
	if out.Verdict == Open && s.passback != nil {
		s.passback.remember(out.Token, now)
	}
	s.o.Metrics.tapDecided(string(out.Verdict), string(out.Reason), SchemeQR, sealed.Sub(start), committed.Sub(sealed))
	return out
}

func (s *Station) recordQR(now time.Time, decide time.Duration, out *Outcome, code *qr.Code, category string) (*tap.Record, error) {
	id, err := s.o.NewID()
	if err != nil {
		return nil, fmt.Errorf("validator: tap id: %w", err)
	}
	return &tap.Record{
		ID:              id,
		Gate:            s.o.GateID,
		Time:            now.UTC(),
		LocalTime:       now.In(s.o.Zone).Format(time.RFC3339Nano),
		Location:        s.o.Location,
		Kind:            tap.KindQR,
		Token:           out.Token,
		Scheme:          SchemeQR,
		Category:        category,
		ODA:             tap.ODA{Method: string(tapdata.MethodNone)},
		Decision:        tap.Decision(out.Verdict),
		Reason:          string(out.Reason),
		Provisional:     true,
		DecideMicros:    decide.Microseconds(),
		DenylistVersion: s.o.DenylistVersion(),
		QR:              code.Payload(),
	}, nil
}
