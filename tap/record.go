// Package tap is the one model of a tap once a gate has decided it: the
// record the gate journals (validator) and uploads, and the back office
// stores and settles (backend). It also owns the two things that travel
// with a record: the card data sealed to the back office's payment vault
// (HPKE), and the signed upload batch of POST /v1/taps (docs/api.md).
//
// A Record never holds a clear PAN: the rider is a rider.Token, the card a
// masked PAN, and what the acquirer needs is in Sealed, which only the vault
// can open.
package tap

import (
	"time"

	"github.com/faregate/faregate/rider"
	"github.com/google/uuid"
)

// Kind is what the rider presented.
type Kind string

const (
	KindEMV Kind = "emv" // a contactless bank card or phone
	KindQR  Kind = "qr"  // an offline QR credential (docs/qr.md)
)

// Role is the tap's role in a journey, from the gate's location.
type Role string

const (
	RoleEntry Role = "on"  // tap-on: entering the system (or a bus boarding)
	RoleExit  Role = "off" // tap-off: leaving a gated station
)

// Decision is what the gate did.
type Decision string

const (
	Open   Decision = "open"
	Reject Decision = "reject"
)

// Location is where the gate stands. Every field is optional free text of
// at most MaxField bytes except Role; Zones are the fare zones of the stop.
type Location struct {
	Operator  string   `json:"operator,omitempty"`
	Line      string   `json:"line,omitempty"`
	Stop      string   `json:"stop,omitempty"`
	Zones     []string `json:"zones,omitempty"`
	Direction string   `json:"direction,omitempty"`
	Mode      string   `json:"mode,omitempty"` // the fare rules' mode: "bus", "rail", …
	Role      Role     `json:"role,omitempty"` // "on", "off"; empty for flat-fare boardings
	// Group is the pass-back group: gates of one group refuse the same
	// token twice within the pass-back time.
	Group string `json:"group,omitempty"`
}

// ODA is the outcome of offline data authentication, without card data.
type ODA struct {
	Method string `json:"method"`           // none, SDA, DDA, fDDA, CDA
	OK     bool   `json:"ok"`               // performed and passed
	Stage  string `json:"stage,omitempty"`  // oda.Error stage when it failed
	Reason string `json:"reason,omitempty"` // oda.Error reason when it failed
}

// Record is one decided tap. The gate journals it before the gate opens;
// Seq is the gate's own gapless counter, ID is unique across all gates.
type Record struct {
	ID   uuid.UUID `json:"id"`   // UUIDv7, made by the gate
	Gate string    `json:"gate"` // the gate's id, as registered at the back office
	Seq  uint64    `json:"seq"`  // 1, 2, 3, … per gate
	// Time is when the gate decided, in UTC; LocalTime is the same instant
	// with the gate's UTC offset (RFC 3339), as the rider saw it.
	Time      time.Time `json:"time"`
	LocalTime string    `json:"local_time"`
	Location  Location  `json:"location"`

	Kind      Kind        `json:"kind"`
	Token     rider.Token `json:"token"`                // zero when the card was not read far enough
	MaskedPAN string      `json:"masked_pan,omitempty"` // first 6 / last 4 at most
	Scheme    string      `json:"scheme,omitempty"`
	Category  string      `json:"category,omitempty"` // fare category, when the gate knows it (QR)
	ODA       ODA         `json:"oda"`

	Decision Decision `json:"decision"`
	Reason   string   `json:"reason"`
	// Provisional: accepted offline on a credential the back office must
	// still confirm (QR taps).
	Provisional bool `json:"provisional,omitempty"`

	// KernelMicros is the card read and ODA; DecideMicros the whole
	// decision, both in microseconds.
	KernelMicros int64 `json:"kernel_us,omitempty"`
	DecideMicros int64 `json:"decide_us,omitempty"`
	// DenylistVersion is the deny-list version the decision used (0: none).
	DenylistVersion uint64 `json:"denylist_version"`

	// Sealed is the card data the acquirer needs (CardData), sealed to the
	// back office's vault key with Seal; empty on refused taps.
	Sealed []byte `json:"sealed,omitempty"`
	// QR is the QR payload as scanned (KindQR only), for the back office to
	// verify again.
	QR []byte `json:"qr,omitempty"`
}
