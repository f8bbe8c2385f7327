package acquirer_test

import (
	"testing"
	"time"

	"github.com/faregate/faregate/acquirer"
	"github.com/stretchr/testify/require"
)

func TestCategorize(t *testing.T) {
	for _, tc := range []struct {
		code, mac string
		want      acquirer.Category
	}{
		{"00", "", acquirer.CategoryApproved},
		{"85", "", acquirer.CategoryApproved},
		{"", "", acquirer.CategoryNotDecline},
		{"91", "", acquirer.CategoryNotDecline},
		{"96", "", acquirer.CategoryNotDecline},
		{"04", "", acquirer.CategoryNeverRetry},
		{"07", "", acquirer.CategoryNeverRetry},
		{"12", "", acquirer.CategoryNeverRetry},
		{"15", "", acquirer.CategoryNeverRetry},
		{"41", "", acquirer.CategoryNeverRetry},
		{"43", "", acquirer.CategoryNeverRetry},
		{"46", "", acquirer.CategoryNeverRetry},
		{"57", "", acquirer.CategoryNeverRetry},
		{"51", "03", acquirer.CategoryNeverRetry},
		{"51", "21", acquirer.CategoryNeverRetry},
		{"51", "", acquirer.CategoryRetryLater},
		{"61", "", acquirer.CategoryRetryLater},
		{"65", "", acquirer.CategoryRetryLater},
		{"05", "", acquirer.CategoryRetryLater},
		{"51", "24", acquirer.CategoryRetryLater},
		{"Z9", "", acquirer.CategoryRetryLater}, // Visa category 4: generic
		{"54", "", acquirer.CategoryUpdateCard},
		{"55", "", acquirer.CategoryUpdateCard},
		{"14", "", acquirer.CategoryUpdateCard},
		{"05", "01", acquirer.CategoryUpdateCard},
	} {
		require.Equal(t, tc.want, acquirer.Categorize(tc.code, tc.mac), "code %q mac %q", tc.code, tc.mac)
	}
}

func TestPlan(t *testing.T) {
	day := 24 * time.Hour
	t0 := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	p := acquirer.Policy{FirstRideLimit: 300}
	for _, tc := range []struct {
		name      string
		code, mac string
		amount    int64
		h         acquirer.History
		now       time.Time
		want      acquirer.Action
		retryAt   time.Time
		deny      bool
	}{
		{name: "approved", code: "00", amount: 500, now: t0, want: acquirer.ActionClose},
		{name: "timeout", code: "", amount: 500, now: t0, want: acquirer.ActionRetryNow},
		{name: "91", code: "91", amount: 500, now: t0, want: acquirer.ActionRetryNow},
		{name: "insufficient funds: first resubmission a day later", code: "51", amount: 500, h: acquirer.History{DeclinesSinceApproval: 1}, now: t0,
			want: acquirer.ActionRetryAt, retryAt: t0.Add(day), deny: true},
		{name: "third resubmission on the schedule", code: "51", amount: 500,
			h: acquirer.History{FirstDeclinedAt: t0, Resubmissions: 2, DeclinesSinceApproval: 3}, now: t0.Add(2 * day),
			want: acquirer.ActionRetryAt, retryAt: t0.Add(4 * day), deny: true},
		{name: "six resubmissions used", code: "51", amount: 500,
			h: acquirer.History{FirstDeclinedAt: t0, Resubmissions: 6, DeclinesSinceApproval: 7}, now: t0.Add(13 * day),
			want: acquirer.ActionAwaitRider, deny: true},
		{name: "fourteen days passed", code: "51", amount: 500,
			h: acquirer.History{FirstDeclinedAt: t0, Resubmissions: 3, DeclinesSinceApproval: 4}, now: t0.Add(14 * day),
			want: acquirer.ActionAwaitRider, deny: true},
		{name: "MAC 24 waits an hour at least (schedule says a day)", code: "51", mac: "24", amount: 500, h: acquirer.History{DeclinesSinceApproval: 1}, now: t0,
			want: acquirer.ActionRetryAt, retryAt: t0.Add(day), deny: true},
		{name: "MAC 27 waits four days", code: "51", mac: "27", amount: 500, h: acquirer.History{DeclinesSinceApproval: 1}, now: t0,
			want: acquirer.ActionRetryAt, retryAt: t0.Add(4 * day), deny: true},
		{name: "MAC 30 beyond the window", code: "05", mac: "30", amount: 500,
			h: acquirer.History{FirstDeclinedAt: t0, Resubmissions: 1, DeclinesSinceApproval: 2}, now: t0.Add(5 * day),
			want: acquirer.ActionAwaitRider, deny: true},
		{name: "stolen card: never retry", code: "43", amount: 500, h: acquirer.History{DeclinesSinceApproval: 1}, now: t0, want: acquirer.ActionAwaitRider, deny: true},
		{name: "MAC 03 never retry", code: "51", mac: "03", amount: 500, h: acquirer.History{DeclinesSinceApproval: 1}, now: t0, want: acquirer.ActionAwaitRider, deny: true},
		{name: "expired card: update", code: "54", amount: 500, h: acquirer.History{DeclinesSinceApproval: 1}, now: t0, want: acquirer.ActionAwaitRider, deny: true},
		{name: "first ride risk: first decline since approval, small", code: "51", amount: 290, now: t0, want: acquirer.ActionWriteOff, deny: true},
		{name: "first ride risk: never-retry too", code: "05", amount: 300, now: t0, want: acquirer.ActionWriteOff, deny: true},
		{name: "first ride risk: above the limit", code: "51", amount: 301, now: t0, want: acquirer.ActionRetryAt, retryAt: t0.Add(day), deny: true},
		{name: "first ride risk: not the first decline", code: "51", amount: 290, h: acquirer.History{DeclinesSinceApproval: 1}, now: t0,
			want: acquirer.ActionRetryAt, retryAt: t0.Add(day), deny: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := p.Plan(tc.code, tc.mac, capAmount(tc.amount), tc.h, tc.now)
			require.Equal(t, tc.want, d.Action, "got %s, want %s", d.Action, tc.want)
			require.Equal(t, tc.deny, d.DenyList)
			if !tc.retryAt.IsZero() {
				require.Equal(t, tc.retryAt, d.RetryAt)
			}
			if d.DenyList {
				require.False(t, d.FirstDeclinedAt.IsZero())
			}
		})
	}
}

func TestRetryOnTap(t *testing.T) {
	day := 24 * time.Hour
	t0 := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	p := acquirer.DefaultPolicy
	h := acquirer.History{DeclinesSinceApproval: 1}
	d := p.Plan("51", "", 500, h, t0)
	require.True(t, p.RetryOnTap(d, acquirer.History{FirstDeclinedAt: t0}, t0.Add(time.Hour)), "TfL: the next tap retries before the schedule")
	require.False(t, p.RetryOnTap(d, acquirer.History{FirstDeclinedAt: t0, Resubmissions: 6}, t0.Add(2*day)), "limit used")
	require.False(t, p.RetryOnTap(d, acquirer.History{FirstDeclinedAt: t0, Resubmissions: 1}, t0.Add(15*day)), "window over")
	d = p.Plan("51", "25", 500, h, t0)
	require.False(t, p.RetryOnTap(d, acquirer.History{FirstDeclinedAt: t0}, t0.Add(time.Hour)), "MAC 25: not within 24 h")
	require.True(t, p.RetryOnTap(d, acquirer.History{FirstDeclinedAt: t0}, t0.Add(25*time.Hour)))
	d = p.Plan("57", "", 500, h, t0)
	require.False(t, p.RetryOnTap(d, acquirer.History{FirstDeclinedAt: t0}, t0.Add(time.Hour)), "never retry")
}
