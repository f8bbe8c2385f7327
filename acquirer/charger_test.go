package acquirer_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/faregate/faregate/acquirer"
	"github.com/faregate/faregate/capping"
	"github.com/faregate/faregate/rider"
	"github.com/faregate/faregate/tap"
	"github.com/stretchr/testify/require"
)

// backOffice is an in-memory back office: the four interfaces the Charger
// needs.
type backOffice struct {
	mu       sync.Mutex
	pending  map[string]acquirer.Charge
	outcomes map[string]acquirer.Outcome
	cards    map[rider.Token]tap.CardData
	denied   map[rider.Token]capping.Amount
	removed  []rider.Token
}

func newBackOffice() *backOffice {
	return &backOffice{pending: map[string]acquirer.Charge{}, outcomes: map[string]acquirer.Outcome{},
		cards: map[rider.Token]tap.CardData{}, denied: map[rider.Token]capping.Amount{}}
}

func (b *backOffice) ChargesToSend(ctx context.Context, limit int) ([]acquirer.Charge, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []acquirer.Charge
	for _, c := range b.pending {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out[:min(limit, len(out))], nil
}

func (b *backOffice) RecordOutcome(ctx context.Context, o acquirer.Outcome) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.pending, o.Charge.ID)
	b.outcomes[o.Charge.ID] = o
	return nil
}

func (b *backOffice) CardData(ctx context.Context, t rider.Token) (tap.CardData, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, ok := b.cards[t]
	if !ok {
		return tap.CardData{}, errors.New("vault: no card")
	}
	return c, nil
}

func (b *backOffice) AddLateDecline(ctx context.Context, t rider.Token, owed capping.Amount, cur capping.Currency, at time.Time, actor string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.denied[t] += owed
	return nil
}

func (b *backOffice) Remove(ctx context.Context, t rider.Token, reason, actor string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.denied, t)
	b.removed = append(b.removed, t)
	return nil
}

// addRider files a card in the vault and returns its token.
func (b *backOffice) addRider(t testing.TB, pan string) rider.Token {
	card := testCard(t)
	card.PAN = pan
	tok := rider.NewToken(testTokenKey, pan, "01")
	b.cards[tok] = card
	return tok
}

func TestChargerEndToEnd(t *testing.T) {
	var ledger syncBuffer
	bo := newBackOffice()
	good := bo.addRider(t, "4761739001010119")
	poor := bo.addRider(t, "4761739001010127")
	stolen := bo.addRider(t, "5413330089010434")
	refund := bo.addRider(t, "4761739001010135")
	rules := acquirer.Rules{TokenKey: hexOf(testTokenKey), Rules: []acquirer.Rule{
		{Name: "insufficient funds, twice", Tokens: []rider.Token{poor}, MTI: []string{"0200"}, ResponseCode: "51", MAC: "24", Times: 1},
		{Name: "stolen", PANRanges: []acquirer.PANRange{{From: "5413", To: "5413"}}, ResponseCode: "43"},
		{Name: "first attempt unanswered", Tokens: []rider.Token{good}, Drop: true, Times: 1},
	}}
	_, addr := startHost(t, rules, &ledger, nil)
	client := dial(t, addr, acquirer.Options{SendTimeout: 300 * time.Millisecond})
	now := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	ch := acquirer.NewCharger(client, bo, bo, bo, bo, acquirer.ChargerOptions{Now: func() time.Time { return now }})

	for _, c := range []acquirer.Charge{
		{ID: "c1", Token: good, Amount: 810, Currency: gbp, Gate: "gate-1"},
		{ID: "c2", Token: poor, Amount: 560, Currency: gbp, Gate: "gate-2"},
		{ID: "c3", Token: stolen, Amount: 290, Currency: gbp, Gate: "gate-1"},
		{ID: "c4", Token: refund, Amount: -150, Currency: gbp, Gate: "gate-3"},
	} {
		bo.pending[c.ID] = c
	}
	n, err := ch.RunOnce(context.Background())
	require.NoError(t, err)
	require.Equal(t, 4, n)
	require.Empty(t, bo.pending)

	require.Equal(t, acquirer.StatusApproved, bo.outcomes["c1"].Status)
	require.Equal(t, 2, bo.outcomes["c1"].Result.Attempts, "the dropped first attempt was reversed and retried")
	require.Equal(t, acquirer.StatusDeclined, bo.outcomes["c2"].Status)
	require.Equal(t, acquirer.ActionRetryAt, bo.outcomes["c2"].Decision.Action)
	require.Equal(t, now.Add(24*time.Hour), bo.outcomes["c2"].Decision.RetryAt)
	require.Equal(t, acquirer.ActionAwaitRider, bo.outcomes["c3"].Decision.Action)
	require.Equal(t, acquirer.StatusApproved, bo.outcomes["c4"].Status)
	require.Equal(t, map[rider.Token]capping.Amount{poor: 560, stolen: 290}, bo.denied)

	// The acquirer holds exactly the approved charges, the refund given back.
	require.Equal(t, map[string]capping.Amount{"c1": 810, "c4": -150}, held(ledger.entries(t)))

	// A day later the scheduled resubmission is approved: the token leaves
	// the deny list.
	now = now.Add(24 * time.Hour)
	d := bo.outcomes["c2"].Decision
	bo.pending["c2"] = acquirer.Charge{ID: "c2", Token: poor, Amount: 560, Currency: gbp, Gate: "gate-2",
		History: acquirer.History{FirstDeclinedAt: d.FirstDeclinedAt, DeclinesSinceApproval: 1}}
	n, err = ch.RunOnce(context.Background())
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, acquirer.StatusApproved, bo.outcomes["c2"].Status)
	require.Equal(t, []rider.Token{poor}, bo.removed)
	require.NotContains(t, bo.denied, poor)
	require.Equal(t, map[string]capping.Amount{"c1": 810, "c2": 560, "c4": -150}, held(ledger.entries(t)))
	require.NotContains(t, ledger.String(), "4761739001010119")
	for _, o := range bo.outcomes {
		require.NotContains(t, fmt.Sprintf("%+v", o), "476173900101")
	}
}

func TestAccountCheckFirstRideRisk(t *testing.T) {
	var ledger syncBuffer
	bo := newBackOffice()
	tok := bo.addRider(t, "4761739001010119")
	rules := acquirer.Rules{Rules: []acquirer.Rule{{MTI: []string{"0100"}, ResponseCode: "05"}}}
	_, addr := startHost(t, rules, &ledger, nil)
	client := dial(t, addr, acquirer.Options{})
	ch := acquirer.NewCharger(client, bo, bo, bo, bo, acquirer.ChargerOptions{Policy: acquirer.Policy{FirstRideLimit: 300}})
	out, err := ch.CheckAccount(context.Background(), tok, "gate-1", 290, gbp)
	require.NoError(t, err)
	require.Equal(t, acquirer.StatusDeclined, out.Status)
	require.Equal(t, acquirer.ActionWriteOff, out.Decision.Action)
	require.Contains(t, bo.denied, tok)
	es := ledger.entries(t)
	require.Equal(t, "0100", es[len(es)-1].MTI)
	require.EqualValues(t, 0, es[len(es)-1].Amount)
}

func TestChargerRun(t *testing.T) {
	var ledger syncBuffer
	bo := newBackOffice()
	tok := bo.addRider(t, "4761739001010119")
	_, addr := startHost(t, acquirer.Rules{}, &ledger, nil)
	client := dial(t, addr, acquirer.Options{})
	ch := acquirer.NewCharger(client, bo, bo, bo, bo, acquirer.ChargerOptions{Batch: 2})
	bo.mu.Lock()
	for i := range 5 {
		id := fmt.Sprintf("c%d", i)
		bo.pending[id] = acquirer.Charge{ID: id, Token: tok, Amount: 100, Currency: gbp, Gate: "g"}
	}
	bo.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { ch.Run(ctx, 20*time.Millisecond, func(err error) { t.Error(err) }); close(done) }()
	require.Eventually(t, func() bool {
		bo.mu.Lock()
		defer bo.mu.Unlock()
		return len(bo.outcomes) == 5
	}, 10*time.Second, 5*time.Millisecond)
	cancel()
	<-done
	require.Len(t, held(ledger.entries(t)), 5)
}
