package backend

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/faregate/faregate/qr"
	"github.com/faregate/faregate/rider"
	"github.com/google/uuid"
)

// QRStore is what the back office keeps for offline QR credentials
// (docs/qr.md): the device keys it issued and revoked, the counters
// uploaded taps used, and the outcome of verifying each uploaded QR tap.
// It is the qr.Store the back-office verifier (qr.BackOffice) reads. Both
// SQL stores implement it; one conformance suite runs on both.
type QRStore interface {
	qr.Store
	// IssueQR records a credential the back office signed;
	// ErrQRCredentialExists if its device key was issued before.
	IssueQR(ctx context.Context, c QRCredential) error
	// QRCredential returns the record of a device key.
	QRCredential(ctx context.Context, device qr.DeviceKey) (QRCredential, bool, error)
	// RevokeQR marks a device key revoked from at on (an earlier
	// revocation stays) and returns its record; ErrNoQRCredential if the
	// key was never issued.
	RevokeQR(ctx context.Context, device qr.DeviceKey, at time.Time) (QRCredential, error)
	// RecordQROutcomes records the verdicts on uploaded QR taps (the first
	// verdict of a tap stays). A confirmed tap that is a leg becomes one,
	// priced in its Category and counted as received at checked: a run
	// settles it like a tap uploaded then.
	RecordQROutcomes(ctx context.Context, outcomes []QROutcome, checked time.Time) error
}

// QR store errors.
var (
	ErrQRCredentialExists = errors.New("backend: qr: device key already issued")
	ErrNoQRCredential     = errors.New("backend: qr: device key never issued")
)

// QRCredential is the back office's record of one credential it issued.
type QRCredential struct {
	qr.Issued
	KeyID     qr.KeyID
	NotBefore time.Time
	NotAfter  time.Time
	Category  qr.Category
}

// QR outcomes of an uploaded tap.
const (
	QRConfirmed = "confirmed"
	QRRefused   = "refused"
)

// QROutcome is the back office's verdict on one uploaded QR tap.
type QROutcome struct {
	TapID    uuid.UUID
	Outcome  string    // QRConfirmed or QRRefused
	Reason   qr.Reason // refused: why
	Detail   string    // refused: the verifier's message (no secret in it)
	Category string    // confirmed: the credential's rider category
	// Leg: confirmed, and the gate opened for it on entry: settlement
	// prices it.
	Leg bool
}

var (
	_ QRStore = (*SQLiteStore)(nil)
	_ QRStore = (*PostgresStore)(nil)
)

func (s *sqlStore) IssueQR(ctx context.Context, c QRCredential) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO qr_credentials (device, token, key_id, category, not_before_ms, not_after_ms, issued_ms, revoked_ms)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
		c.Device[:], c.Token[:], int64(c.KeyID), int64(c.Category), msOf(c.NotBefore), msOf(c.NotAfter), msOf(c.IssuedAt), msOf(c.RevokedAt))
	if err != nil && s.d.isConflict(err) {
		return ErrQRCredentialExists
	}
	if err != nil {
		return fmt.Errorf("backend: qr: issue: %w", err)
	}
	return nil
}

func (s *sqlStore) QRCredential(ctx context.Context, device qr.DeviceKey) (QRCredential, bool, error) {
	return s.credential(ctx, s.db, device)
}

func (s *sqlStore) credential(ctx context.Context, db querier, device qr.DeviceKey) (QRCredential, bool, error) {
	var c QRCredential
	var token []byte
	var keyID, cat, nb, na, issued, revoked int64
	err := db.QueryRowContext(ctx, s.q(`SELECT token, key_id, category, not_before_ms, not_after_ms, issued_ms, revoked_ms
		FROM qr_credentials WHERE device = ?`), device[:]).Scan(&token, &keyID, &cat, &nb, &na, &issued, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return QRCredential{}, false, nil
	}
	if err != nil {
		return QRCredential{}, false, fmt.Errorf("backend: qr: credential: %w", err)
	}
	if len(token) != len(rider.Token{}) {
		return QRCredential{}, false, fmt.Errorf("backend: qr: credential: stored token of %d bytes", len(token))
	}
	c.Device = device
	c.Token = rider.Token(token)
	c.KeyID, c.Category = qr.KeyID(keyID), qr.Category(cat)
	c.NotBefore, c.NotAfter, c.IssuedAt, c.RevokedAt = timeOf(nb), timeOf(na), timeOf(issued), timeOf(revoked)
	return c, true, nil
}

// Issued implements qr.Store.
func (s *sqlStore) Issued(ctx context.Context, device qr.DeviceKey) (qr.Issued, bool, error) {
	c, ok, err := s.QRCredential(ctx, device)
	return c.Issued, ok, err
}

func (s *sqlStore) RevokeQR(ctx context.Context, device qr.DeviceKey, at time.Time) (QRCredential, error) {
	ms := msOf(at)
	_, err := s.db.ExecContext(ctx, s.q(`UPDATE qr_credentials SET revoked_ms = ? WHERE device = ? AND (revoked_ms = 0 OR revoked_ms > ?)`),
		ms, device[:], ms)
	if err != nil {
		return QRCredential{}, fmt.Errorf("backend: qr: revoke: %w", err)
	}
	c, ok, err := s.QRCredential(ctx, device)
	if err != nil {
		return QRCredential{}, err
	}
	if !ok {
		return QRCredential{}, ErrNoQRCredential
	}
	return c, nil
}

// UseCounter implements qr.Store: an insert-if-absent on (device,
// counter), then whoever holds it.
func (s *sqlStore) UseCounter(ctx context.Context, device qr.DeviceKey, counter uint32, tapID string) (string, error) {
	return s.useCounter(ctx, s.db, device, counter, tapID)
}

// querier is a *sql.DB or a *sql.Tx.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *sqlStore) useCounter(ctx context.Context, db querier, device qr.DeviceKey, counter uint32, tapID string) (string, error) {
	// One round trip when the counter is new (the usual case): RETURNING
	// answers only for an inserted row.
	var first string
	err := db.QueryRowContext(ctx, s.q(`INSERT INTO qr_counters (device, counter, tap_id) VALUES (?, ?, ?)
		ON CONFLICT (device, counter) DO NOTHING RETURNING tap_id`), device[:], int64(counter), tapID).Scan(&first)
	if err == nil {
		return first, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("backend: qr: counter: %w", err)
	}
	if err := db.QueryRowContext(ctx, s.q(`SELECT tap_id FROM qr_counters WHERE device = ? AND counter = ?`), device[:], int64(counter)).Scan(&first); err != nil {
		return "", fmt.Errorf("backend: qr: counter: %w", err)
	}
	return first, nil
}

func (s *sqlStore) RecordQROutcomes(ctx context.Context, outcomes []QROutcome, checked time.Time) error {
	if len(outcomes) == 0 {
		return nil
	}
	for _, o := range outcomes {
		if o.Outcome != QRConfirmed && o.Outcome != QRRefused {
			return fmt.Errorf("backend: qr: outcome %q", o.Outcome)
		}
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("backend: qr: outcomes: %w", err)
	}
	defer tx.Rollback()
	ms := msOf(checked)
	// The verdicts, multi-row; RETURNING names the taps whose first
	// verdict this is.
	inserted := map[uuid.UUID]bool{}
	const cols = 6
	per := s.d.maxParams / cols
	for start := 0; start < len(outcomes); start += per {
		part := outcomes[start:min(start+per, len(outcomes))]
		var b strings.Builder
		b.WriteString("INSERT INTO qr_outcomes (tap_id, outcome, reason, detail, category, checked_ms) VALUES ")
		args := make([]any, 0, len(part)*cols)
		for i, o := range part {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString("(?,?,?,?,?,?)")
			args = append(args, o.TapID[:], o.Outcome, string(o.Reason), o.Detail, o.Category, ms)
		}
		b.WriteString(" ON CONFLICT (tap_id) DO NOTHING RETURNING tap_id")
		rows, err := tx.QueryContext(ctx, s.q(b.String()), args...)
		if err != nil {
			return fmt.Errorf("backend: qr: outcomes: %w", err)
		}
		for rows.Next() {
			var id []byte
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return fmt.Errorf("backend: qr: outcomes: %w", err)
			}
			if u, err := uuid.FromBytes(id); err == nil {
				inserted[u] = true
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("backend: qr: outcomes: %w", err)
		}
	}
	// The tap becomes a leg once, with its first verdict: one UPDATE per
	// category.
	legs := map[string][]any{}
	for _, o := range outcomes {
		if o.Outcome == QRConfirmed && o.Leg && inserted[o.TapID] {
			legs[o.Category] = append(legs[o.Category], o.TapID[:])
		}
	}
	for cat, ids := range legs {
		for start := 0; start < len(ids); start += per {
			part := ids[start:min(start+per, len(ids))]
			args := append([]any{cat, ms}, part...)
			q := `UPDATE taps SET leg = 1, category = ?, received_ms = ? WHERE leg = 0 AND id IN (` +
				strings.TrimSuffix(strings.Repeat("?,", len(part)), ",") + `)`
			if _, err := tx.ExecContext(ctx, s.q(q), args...); err != nil {
				return fmt.Errorf("backend: qr: outcomes: %w", err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("backend: qr: outcomes: %w", err)
	}
	return nil
}

func (s *sqlStore) sql() *sqlStore { return s }
