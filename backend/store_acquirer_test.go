package backend

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/faregate/faregate/capping"
	"github.com/faregate/faregate/tap"
)

// TestStoreAcquirerState: what the acquirer link keeps per charge (the
// recovery plan, attempts, resubmissions), which charges are due, debts of
// cards that tapped again, and first-use account checks — on both engines.
func TestStoreAcquirerState(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		day := capping.DateOf(2026, 11, 23)
		b := &tap.Batch{Gate: "G-1", Taps: []tap.Record{
			testRecord(t, "G-1", 1, testToken(1), st0),
			testRecord(t, "G-1", 2, testToken(2), st0.Add(time.Minute)),
		}}
		_, err := s.StoreBatches(ctx, []*tap.Batch{b}, st0.Add(time.Hour))
		require.NoError(t, err)

		// First-use account checks: every vault token once.
		check, err := s.TokensToCheck(ctx, 10)
		require.NoError(t, err)
		require.Len(t, check, 2)
		require.Equal(t, testToken(1), check[0].Token)
		require.Equal(t, "G-1", check[0].Gate)
		require.NoError(t, s.RecordCheck(ctx, testToken(1), "00", st0))
		require.NoError(t, s.RecordCheck(ctx, testToken(1), "00", st0), "a check recorded again is no error")
		check, err = s.TokensToCheck(ctx, 10)
		require.NoError(t, err)
		require.Len(t, check, 1)
		require.Equal(t, testToken(2), check[0].Token)

		require.NoError(t, s.AddCharges(ctx, []Charge{
			{Token: testToken(1), Day: day, Amount: 290, DayAmount: 290, Taps: 1, Currency: "GBP", Status: ChargePending, Created: st0},
			{Token: testToken(2), Day: day, Amount: 150, DayAmount: 150, Taps: 1, Currency: "GBP", Status: ChargePending, Created: st0},
			{Token: testToken(3), Day: day, Amount: 0, Currency: "GBP", Status: ChargeNone, Created: st0},
		}))
		now := st0.Add(24 * time.Hour)
		due, err := s.ChargesDue(ctx, now, 10)
		require.NoError(t, err)
		require.Len(t, due, 2, "pending charges with an amount are due")
		c1, c2 := due[0], due[1]
		require.Equal(t, testToken(1), c1.Token)

		// A decline with a plan: not due before its retry, due after.
		retry := now.Add(24 * time.Hour)
		require.NoError(t, s.RecordOutcome(ctx, c1.ID, Outcome{Status: ChargeDeclined, Code: "51", At: now,
			Category: "retry_later", Action: "retry_at", FirstDeclined: now, NextRetry: retry, NotBefore: now.Add(time.Hour)}))
		require.NoError(t, s.RecordOutcome(ctx, c2.ID, Outcome{Status: ChargeApproved, Code: "00", Reference: "RRN1", At: now, Category: "approved", Action: "close"}))
		due, err = s.ChargesDue(ctx, now.Add(time.Hour), 10)
		require.NoError(t, err)
		require.Empty(t, due)
		due, err = s.ChargesDue(ctx, retry, 10)
		require.NoError(t, err)
		require.Len(t, due, 1)
		got := due[0]
		require.Equal(t, ChargeDeclined, got.Status)
		require.Equal(t, "retry_later", got.Category)
		require.Equal(t, "retry_at", got.Action)
		require.Equal(t, 1, got.Attempts)
		require.Equal(t, 0, got.Resubmissions)
		require.True(t, got.FirstDeclined.Equal(now))
		require.True(t, got.NextRetry.Equal(retry))
		require.True(t, got.NotBefore.Equal(now.Add(time.Hour)))

		debts, err := s.Debts(ctx, testToken(1))
		require.NoError(t, err)
		require.Len(t, debts, 1)
		debts, err = s.Debts(ctx, testToken(2))
		require.NoError(t, err)
		require.Empty(t, debts)

		// The card taps again: its debt shows until it is looked at.
		r, err := s.Retapped(ctx, 10)
		require.NoError(t, err)
		require.Empty(t, r, "the taps before the decline do not count")
		again := &tap.Batch{Gate: "G-1", Taps: []tap.Record{testRecord(t, "G-1", 3, testToken(1), now.Add(2*time.Hour))}}
		_, err = s.StoreBatches(ctx, []*tap.Batch{again}, now.Add(2*time.Hour))
		require.NoError(t, err)
		r, err = s.Retapped(ctx, 10)
		require.NoError(t, err)
		require.Len(t, r, 1)
		require.Equal(t, c1.ID, r[0].ID)
		at := now.Add(2 * time.Hour)
		require.NoError(t, s.MarkRetap(ctx, c1.ID, at, at))
		require.ErrorIs(t, s.MarkRetap(ctx, 999999, at, time.Time{}), ErrNoCharge)
		r, err = s.Retapped(ctx, 10)
		require.NoError(t, err)
		require.Empty(t, r)
		due, err = s.ChargesDue(ctx, at, 10)
		require.NoError(t, err)
		require.Len(t, due, 1, "a retap makes the debt due at once")

		// A reversal held keeps the charge from being sent.
		require.NoError(t, s.HoldReversal(ctx, c1.ID, []byte(`{"STAN":"000042"}`)))
		require.ErrorIs(t, s.HoldReversal(ctx, 999999, nil), ErrNoCharge)
		due, err = s.ChargesDue(ctx, at, 10)
		require.NoError(t, err)
		require.Empty(t, due)
		held, err := s.HeldReversals(ctx)
		require.NoError(t, err)
		require.Len(t, held, 1)
		require.JSONEq(t, `{"STAN":"000042"}`, string(held[0].Reversal))
		require.NoError(t, s.HoldReversal(ctx, c1.ID, nil))
		held, err = s.HeldReversals(ctx)
		require.NoError(t, err)
		require.Empty(t, held)
		due, err = s.ChargesDue(ctx, at, 10)
		require.NoError(t, err)
		require.Len(t, due, 1)

		// The resubmission is approved: counted, closed, no longer a debt.
		require.NoError(t, s.RecordOutcome(ctx, c1.ID, Outcome{Status: ChargeApproved, Code: "00", At: at, Category: "approved", Action: "close", FirstDeclined: now}))
		rc, err := s.RiderCharges(ctx, testToken(1))
		require.NoError(t, err)
		require.Equal(t, ChargeApproved, rc[0].Status)
		require.Equal(t, 2, rc[0].Attempts)
		require.Equal(t, 1, rc[0].Resubmissions)
		require.True(t, rc[0].NextRetry.IsZero())
		due, err = s.ChargesDue(ctx, at.Add(30*24*time.Hour), 10)
		require.NoError(t, err)
		require.Empty(t, due)
	})
}
