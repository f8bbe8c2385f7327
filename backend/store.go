package backend

import (
	"context"
	"crypto/ed25519"
	"errors"
	"time"

	"github.com/faregate/faregate/capping"
	"github.com/faregate/faregate/rider"
	"github.com/faregate/faregate/tap"
	"github.com/google/uuid"
)

// Store keeps everything the back office knows: gates, taps, the vault's
// sealed card data, settlement runs and charges. OpenSQLite and
// OpenPostgres return its two implementations; one conformance suite
// (store_test.go) runs on both.
type Store interface {
	// AddGate registers a gate's upload key; ErrGateExists if the id is taken.
	AddGate(ctx context.Context, id string, pub ed25519.PublicKey, now time.Time) error
	// SetGateDisabled disables (or enables again) a gate; ErrNoGate if unknown.
	SetGateDisabled(ctx context.Context, id string, disabled bool) error
	// Gates lists every gate, by id.
	Gates(ctx context.Context) ([]Gate, error)

	// StoreBatches stores the taps of several authenticated, validated
	// batches in one transaction (group commit) and records what each gate
	// reported. A tap whose id is already stored is left as it is. It
	// returns, per batch, how many of its taps were new. Sealed card data
	// goes to the vault, never to the taps.
	StoreBatches(ctx context.Context, batches []*tap.Batch, received time.Time) (newTaps []int, err error)
	// Taps returns the stored taps of a token with time in [from, to), in
	// time order, as the gates sent them (Sealed is never kept with a tap).
	Taps(ctx context.Context, token rider.Token, from, to time.Time) ([]StoredTap, error)
	// ScanTaps calls fn with every stored tap whose time is in [from, to)
	// and that was received after from less ReceivedSlack (gate clocks
	// ahead of ours), in no particular order: the overview's counts.
	ScanTaps(ctx context.Context, from, to time.Time, fn func(*StoredTap) error) error
	// FirstReceived returns when the first stored tap was received.
	FirstReceived(ctx context.Context) (t time.Time, ok bool, err error)
	// CountTaps returns how many taps are stored.
	CountTaps(ctx context.Context) (int64, error)

	// SealedCard returns the newest sealed card data of a token (the
	// vault's record); ok is false when there is none.
	SealedCard(ctx context.Context, token rider.Token) (SealedCard, bool, error)

	// BeginRun returns the settlement run of a day, creating it with cutoff
	// when it does not exist: every shard and every re-run of the day sees
	// the taps received before the first attempt's cutoff.
	BeginRun(ctx context.Context, day capping.Date, cutoff, now time.Time) (Run, error)
	// Runs lists the runs, by day, with the shards that finished.
	Runs(ctx context.Context) ([]Run, error)
	// RunTaps calls fn once per token of the shard that has a leg received
	// in [q.ReceivedFrom, q.Cutoff) with time before q.DayEnd and no charge
	// of q.Day yet, in token order, with all the token's legs (time before
	// q.DayEnd, received before q.Cutoff) and what its earlier charges add
	// up to.
	RunTaps(ctx context.Context, q RunQuery, fn func(RunRider) error) error
	// AddCharges records charges; a charge of a (token, day) already
	// recorded is left as it is (a re-run after a crash).
	AddCharges(ctx context.Context, charges []Charge) error
	// FinishShard marks shard i of n of a day's run done.
	FinishShard(ctx context.Context, day capping.Date, shard Shard, now time.Time) error

	// Charges lists the charges of a run day, by token.
	Charges(ctx context.Context, day capping.Date) ([]Charge, error)
	// RiderCharges lists a token's charges, by run day.
	RiderCharges(ctx context.Context, token rider.Token) ([]Charge, error)
	// ChargesToSend returns up to limit charges with status ChargePending
	// and a non-zero amount, oldest first: what the acquirer link sends.
	ChargesToSend(ctx context.Context, limit int) ([]Charge, error)
	// RecordOutcome records what the acquirer answered for a charge and
	// the recovery plan (category, next retry); it counts the attempt, and
	// a resubmission when the charge had been declined before. ErrNoCharge
	// if there is no such charge.
	RecordOutcome(ctx context.Context, id int64, o Outcome) error

	// ChargesDue returns up to limit charges the acquirer link sends now,
	// oldest first: the pending ones (non-zero amount) and the declined ones
	// whose next retry has come (0 < NextRetry ≤ now).
	ChargesDue(ctx context.Context, now time.Time, limit int) ([]Charge, error)
	// Retapped returns up to limit declined charges (debts) whose token
	// has a tap received after the charge's last answer and after it was
	// last looked at (MarkRetap): a deny-listed card that tapped again.
	Retapped(ctx context.Context, limit int) ([]Charge, error)
	// MarkRetap records that the taps of a declined charge's token up to
	// seen were looked at, and when at is not zero, makes the charge due
	// at at. ErrNoCharge if there is no such charge.
	MarkRetap(ctx context.Context, id int64, seen, at time.Time) error
	// Debts lists a token's declined charges, oldest first.
	Debts(ctx context.Context, token rider.Token) ([]Charge, error)
	// TokensToCheck returns up to limit vault records of tokens that have
	// had no first-use account check, in token order.
	TokensToCheck(ctx context.Context, limit int) ([]SealedCard, error)
	// RecordCheck records a token's account check and its response code.
	RecordCheck(ctx context.Context, token rider.Token, code string, at time.Time) error
	// HoldReversal keeps the reversal still owed for a charge's last
	// request (the acquirer link's JSON, no card data; nil clears it): the
	// charge is not due while it is held. ErrNoCharge if there is no such
	// charge.
	HoldReversal(ctx context.Context, id int64, reversal []byte) error
	// HeldReversals lists the charges with a reversal held.
	HeldReversals(ctx context.Context) ([]Charge, error)

	Close() error
}

// Errors of the store.
var (
	ErrGateExists = errors.New("backend: gate already registered")
	ErrNoGate     = errors.New("backend: no such gate")
	ErrNoCharge   = errors.New("backend: no such charge")
)

// Gate is a registered gate and what it last reported.
type Gate struct {
	ID       string
	Key      ed25519.PublicKey
	Disabled bool
	Added    time.Time
	// What the gate's last accepted upload said; zero before the first.
	LastSeen        time.Time
	LastSeq         uint64 // highest tap sequence number stored
	Backlog         int64
	OldestUnsent    time.Time
	DenylistVersion uint64
	Taps            int64 // taps stored (duplicates not counted)
}

// ReceivedSlack is how far ahead of the back office's clock a gate's clock
// may be: a tap is received no earlier than its time less this.
const ReceivedSlack = 10 * time.Minute

// StoredTap is a tap as the back office keeps it.
type StoredTap struct {
	tap.Record
	Received time.Time
	// The back office's verdict on a provisional QR tap: QRConfirmed,
	// QRRefused (with a qr.Reason), or empty (not verified: no issuer
	// key configured, or not a provisional tap).
	QROutcome  string
	QRReason   string
	QRCategory string // confirmed: the credential's category
}

// Leg reports whether settlement rates the tap, and in which category.
func (st StoredTap) Leg() (category string, ok bool) {
	if isLeg(&st.Record) {
		return st.Category, true
	}
	if st.Provisional && st.QROutcome == QRConfirmed && opensLeg(&st.Record) {
		return st.QRCategory, true
	}
	return "", false
}

// SealedCard is the vault's record of a token: the newest sealed card data
// and the tap it was sealed for (the HPKE info binds it to that tap).
type SealedCard struct {
	Token  rider.Token
	Gate   string
	TapID  uuid.UUID
	Time   time.Time
	Sealed []byte
}

// Run is a day's settlement run.
type Run struct {
	Day      capping.Date
	Cutoff   time.Time // taps received before it are in the run
	Started  time.Time
	Finished []Shard // shards that finished
}

// Complete reports whether every shard of some split of the run finished.
func (r Run) Complete() bool {
	done := map[int]int{}
	for _, s := range r.Finished {
		done[s.N]++
		if done[s.N] == s.N {
			return true
		}
	}
	return false
}

// Shard is shard I of N (0 ≤ I < N): the tokens whose shard key (the first
// four bytes of the token, big-endian) is in the I-th of N equal ranges of
// the keys (Keys), so a shard is a range of token order.
type Shard struct{ I, N int }

// RunQuery selects what a run (or one shard of it) settles.
type RunQuery struct {
	Day          capping.Date
	DayEnd       time.Time // end of the service day
	ReceivedFrom time.Time // the previous run's cutoff (zero: the first run)
	Cutoff       time.Time
	Shard        Shard
}

// RunRider is one token's input to a run.
type RunRider struct {
	Token   rider.Token
	Legs    []capping.Tap // Token, Time, Mode, Category, Zones, Role, Stop set
	Charged capping.Amount
}

// Charge statuses.
const (
	ChargePending  = "pending"  // to send to the acquirer
	ChargeNone     = "none"     // nothing to send (amount 0)
	ChargeApproved = "approved" // the acquirer approved it
	ChargeDeclined = "declined" // the acquirer declined it (a late decline)
	ChargeFailed   = "failed"   // could not be sent; the acquirer link decides on retries
)

// Charge is what one run charges one token: Amount = what the engine now
// says the token owes for every service day up to Day minus what earlier
// runs charged. DayAmount is Day's own legs; Adjustment the change to
// earlier days (late taps); a negative Amount is a refund.
type Charge struct {
	ID         int64
	Token      rider.Token
	Day        capping.Date
	Amount     capping.Amount
	DayAmount  capping.Amount
	Adjustment capping.Amount
	Taps       int // legs of Day
	Currency   string
	Status     string
	Outcome    string // acquirer response code
	Reference  string // acquirer reference (RRN, authorisation id)
	OutcomeAt  time.Time
	Created    time.Time
	// The acquirer link's state: the last answer's decline category and
	// recovery action (acquirer.Category, acquirer.Action names), requests
	// sent, resubmissions after the first decline, and the plan's times
	// (zero: none).
	Category      string
	Action        string
	Attempts      int
	Resubmissions int
	FirstDeclined time.Time
	NextRetry     time.Time
	NotBefore     time.Time
	// Reversal is the reversal still owed for the last request (nil: none).
	Reversal []byte
}

// Outcome is what the acquirer answered for a charge.
type Outcome struct {
	Status    string // ChargeApproved, ChargeDeclined or ChargeFailed
	Code      string // ISO 8583 response code
	Reference string
	At        time.Time
	// The recovery plan (declines): category and action names, the first
	// decline's time, the next scheduled resubmission (zero: none) and the
	// earliest any resubmission may go.
	Category      string
	Action        string
	FirstDeclined time.Time
	NextRetry     time.Time
	NotBefore     time.Time
}
