package acquirer

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"sync"
	"sync/atomic"
	"time"

	"github.com/faregate/faregate/capping"
	"github.com/moov-io/iso8583"
	connection "github.com/moov-io/iso8583-connection"
	isoerrors "github.com/moov-io/iso8583/errors"
)

// Options configure a Client. The zero value of every field but Addr works.
type Options struct {
	// Addr is the acquirer host, "host:port".
	Addr string
	// Connections is the size of the pool (default 2). Each connection
	// signs on when it opens, echoes when idle and signs off on Close.
	Connections int
	Merchant    Merchant
	// SendTimeout bounds the wait for one answer (default 5 s; the
	// library's default of 30 s is far too long for a charge).
	SendTimeout time.Duration
	// ConnectTimeout bounds a TCP connect (default 3 s).
	ConnectTimeout time.Duration
	// ReconnectWait is the first pause before reconnecting a lost
	// connection; it doubles up to MaxReconnectWait (defaults 250 ms, 30 s).
	ReconnectWait, MaxReconnectWait time.Duration
	// EchoInterval: an idle connection sends an echo (0800, 301) this often
	// and is dropped and reconnected when the echo goes unanswered
	// (default 30 s).
	EchoInterval time.Duration
	// MaxAttempts bounds the requests sent for one Do when answers do not
	// come (each unanswered one is reversed first; default 3).
	MaxAttempts int
	// RetryWait is the first pause between a reversal and the retry and
	// between unanswered reversals; it doubles up to 30 s (default 200 ms).
	RetryWait time.Duration
	// Now is the clock (default time.Now); Rand seeds the first STAN
	// (default crypto/rand).
	Now  func() time.Time
	Rand io.Reader
	// OnError, when set, receives errors no caller can receive (a late
	// answer, a failed echo, a reconnect). They are redacted: no card data.
	OnError func(error)
}

func (o *Options) defaults() {
	if o.Connections <= 0 {
		o.Connections = 2
	}
	if o.SendTimeout <= 0 {
		o.SendTimeout = 5 * time.Second
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 3 * time.Second
	}
	if o.ReconnectWait <= 0 {
		o.ReconnectWait = 250 * time.Millisecond
	}
	if o.MaxReconnectWait <= 0 {
		o.MaxReconnectWait = 30 * time.Second
	}
	if o.EchoInterval <= 0 {
		o.EchoInterval = 30 * time.Second
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 3
	}
	if o.RetryWait <= 0 {
		o.RetryWait = 200 * time.Millisecond
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
}

// Client is the acquirer link: a pool of connections (iso8583-connection)
// that reconnect with exponential backoff, STANs unique across the pool,
// and the timeout rule — a request left unanswered is reversed until the
// acquirer acknowledges the reversal, then sent again with a new STAN.
// A Client is safe for concurrent use.
type Client struct {
	o    Options
	pool *connection.Pool
	stan stanCounter

	pmu     sync.Mutex
	pending map[string]*waiter // by STAN
}

// Dial creates the pool and starts connecting. It does not fail when the
// acquirer is down: connections keep trying in the background and Do waits
// for one until its context ends.
func Dial(ctx context.Context, o Options) (*Client, error) {
	o.defaults()
	if o.Addr == "" {
		return nil, fmt.Errorf("%w: no acquirer address", ErrRequest)
	}
	c := &Client{o: o, pending: map[string]*waiter{}}
	var seed [4]byte
	if _, err := io.ReadFull(o.Rand, seed[:]); err != nil {
		return nil, fmt.Errorf("acquirer: seeding STAN: %w", err)
	}
	c.stan.n.Store(binary.BigEndian.Uint32(seed[:]) % stanModulus)
	addrs := make([]string, o.Connections)
	for i := range addrs {
		addrs[i] = o.Addr
	}
	pool, err := connection.NewPool(c.newConnection, addrs,
		connection.PoolMinConnections(0),
		connection.PoolReconnectWait(o.ReconnectWait),
		connection.PoolMaxReconnectWait(o.MaxReconnectWait),
		connection.PoolErrorHandler(c.onError),
	)
	if err != nil {
		return nil, fmt.Errorf("acquirer: pool: %w", err)
	}
	if err := pool.ConnectCtx(ctx); err != nil {
		return nil, fmt.Errorf("acquirer: connect: %w", err)
	}
	c.pool = pool
	return c, nil
}

// Close signs off and closes every connection.
func (c *Client) Close() error { return c.pool.Close() }

// Ready reports whether at least one connection is signed on.
func (c *Client) Ready() bool { return c.pool.IsUp() }

func (c *Client) onError(err error) {
	if c.o.OnError != nil {
		c.o.OnError(redactError(err))
	}
}

// redactError keeps an error from the connection library fit to log: the
// text of pack and unpack errors (which may quote field values) is replaced.
func redactError(err error) error {
	var pe *isoerrors.PackError
	var ue *isoerrors.UnpackError
	switch {
	case errors.As(err, &pe):
		return &SafeError{Msg: "acquirer: cannot pack message", err: err}
	case errors.As(err, &ue):
		return &UnpackError{Field: ue.FieldID, err: err}
	}
	return err
}

func (c *Client) newConnection(addr string) (*connection.Connection, error) {
	return connection.New(addr, Spec, ReadLength, WriteLength,
		connection.SendTimeout(c.o.SendTimeout),
		connection.ConnectTimeout(c.o.ConnectTimeout),
		connection.IdleTime(c.o.EchoInterval),
		connection.ReadTimeout(3*c.o.EchoInterval),
		connection.SetMessageReader(messageReader{}),
		connection.SetMessageWriter(messageWriter{}),
		connection.PingHandler(c.echoIdle),
		connection.OnConnectCtx(func(ctx context.Context, conn *connection.Connection) error {
			return c.network(conn, networkSignOn)
		}),
		connection.OnCloseCtx(func(ctx context.Context, conn *connection.Connection) error {
			// The library marks the connection closing before OnClose runs,
			// so Send refuses: the sign-off goes as a direct write and its
			// answer is not awaited.
			b, err := buildNetwork(networkSignOff, c.stan.next(), c.o.Now()).Pack()
			if err != nil {
				return err
			}
			_, err = conn.Write(append([]byte{byte(len(b) >> 8), byte(len(b))}, b...))
			return err
		}),
		connection.InboundMessageHandler(c.inbound),
		connection.ErrorHandler(c.onError),
	)
}

// echoIdle runs when a connection has been idle for EchoInterval; an echo
// that fails closes the connection so the pool reconnects it.
func (c *Client) echoIdle(conn *connection.Connection) {
	if err := c.network(conn, networkEcho); err != nil {
		conn.TriggerFailure(err)
	}
}

// network sends a network management request (0800) on one connection.
func (c *Client) network(conn *connection.Connection, code string) error {
	resp, err := c.exchange(conn, buildNetwork(code, c.stan.next(), c.o.Now()), c.o.SendTimeout)
	if err != nil {
		return fmt.Errorf("acquirer: network message %s: %w", code, err)
	}
	r, err := parseResponse(resp, MTINetworkRequest)
	if err != nil {
		return err
	}
	if r.Code != "00" {
		return fmt.Errorf("acquirer: network message %s refused with %s", code, r.Code)
	}
	return nil
}

// Echo sends an echo test (0800, 301) on one connection of the pool.
func (c *Client) Echo(ctx context.Context) error {
	conn, err := c.conn(ctx)
	if err != nil {
		return err
	}
	return c.network(conn, networkEcho)
}

// conn returns a live connection, waiting for the pool to reconnect one
// until ctx ends.
func (c *Client) conn(ctx context.Context) (*connection.Connection, error) {
	wait := 10 * time.Millisecond
	for {
		conn, err := c.pool.Get()
		if err == nil {
			return conn, nil
		}
		if errors.Is(err, connection.ErrPoolClosed) {
			return nil, ErrClosed
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%w: %w", ErrUnavailable, context.Cause(ctx))
		case <-t.C:
		}
		wait = min(2*wait, c.o.ReconnectWait)
	}
}

// errNotSent marks a failure that happened before the request left.
type errNotSent struct{ err error }

func (e errNotSent) Error() string { return e.err.Error() }
func (e errNotSent) Unwrap() error { return e.err }

// send sends msg and waits for its answer. An error is errNotSent when the
// request surely did not reach the acquirer.
func (c *Client) send(ctx context.Context, msg *iso8583.Message) (*iso8583.Message, error) {
	conn, err := c.conn(ctx)
	if err != nil {
		return nil, errNotSent{err}
	}
	timeout := c.o.SendTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = max(min(timeout, time.Until(d)), time.Millisecond)
	}
	return c.exchange(conn, msg, timeout)
}

// exchange writes msg on conn and waits up to timeout for the answer with
// its STAN.
//
// It does not use the library's Connection.Send: in iso8583-connection
// v0.9.0 a connection failure sends to each pending request's unbuffered
// error channel while holding the lock that a Send which has just timed
// out (or just got its answer) needs to unregister itself, and both wait
// forever (the faults test hit it). Here the library only writes
// (Connection.Reply, whose channel is always drained) and delivers
// unmatched messages (InboundMessageHandler, which is every answer since
// its own table stays empty); matching and timeouts are the client's.
func (c *Client) exchange(conn *connection.Connection, msg *iso8583.Message, timeout time.Duration) (*iso8583.Message, error) {
	stan, err := msg.GetString(11)
	if err != nil || stan == "" {
		return nil, errNotSent{fmt.Errorf("%w: no STAN", ErrRequest)}
	}
	w := &waiter{conn: conn, ch: make(chan *iso8583.Message, 1)}
	c.pmu.Lock()
	c.pending[stan] = w
	c.pmu.Unlock()
	defer func() {
		c.pmu.Lock()
		delete(c.pending, stan)
		c.pmu.Unlock()
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	if err := conn.Reply(msg); err != nil {
		var pe *isoerrors.PackError
		if errors.As(err, &pe) {
			return nil, errNotSent{fmt.Errorf("%w: cannot pack", ErrRequest)}
		}
		return nil, fmt.Errorf("acquirer: send: %w", err)
	}
	select {
	case resp := <-w.ch:
		return resp, nil
	case <-t.C:
		return nil, connection.ErrSendTimeout
	case <-conn.Done():
		// The connection closed; an answer read just before still counts.
		select {
		case resp := <-w.ch:
			return resp, nil
		default:
			return nil, connection.ErrConnectionClosed
		}
	}
}

// waiter is a request waiting for its answer on one connection.
type waiter struct {
	conn *connection.Connection
	ch   chan *iso8583.Message // buffered 1
}

// inbound receives every message the acquirer sends and hands an answer to
// the request with its STAN. Anything else (a late answer to a request
// given up on and reversed, a message the host sends unasked) is dropped.
func (c *Client) inbound(conn *connection.Connection, msg *iso8583.Message) {
	stan, err := msg.GetString(11)
	if err != nil {
		return
	}
	c.pmu.Lock()
	w, ok := c.pending[stan]
	c.pmu.Unlock()
	if !ok || w.conn != conn {
		return
	}
	select {
	case w.ch <- msg:
	default: // a duplicate answer
	}
}

// Do sends a charge, refund or account check and returns the acquirer's
// answer. A request left unanswered (send timeout, connection lost with it
// in flight, an answer that does not parse, or response code 91 or 96) is
// reversed — 0400, then 0401 repeats until the acquirer answers — and sent
// again with a new STAN, at most MaxAttempts times; then Do returns
// ErrNoResponse with every attempt reversed. When a reversal cannot be
// acknowledged before ctx ends, Do returns a *ReversalPendingError, which
// the caller must keep and pass to Reverse later.
func (c *Client) Do(ctx context.Context, req Request) (Result, error) {
	wait := c.o.RetryWait
	for attempt := 1; ; attempt++ {
		stan := c.stan.next()
		now := c.o.Now()
		msg, err := c.o.Merchant.build(req, stan, now)
		if err != nil {
			return Result{}, err
		}
		mti, _ := msg.GetMTI()
		resp, err := c.send(ctx, msg)
		var ns errNotSent
		if errors.As(err, &ns) {
			return Result{Attempts: attempt - 1}, ns.err
		}
		if err == nil {
			r, perr := parseResponse(resp, mti)
			if perr == nil && r.STAN == stan && r.Code != "91" && r.Code != "96" {
				r.Attempts = attempt
				return r, nil
			}
		}
		orig := Original{
			MTI: mti, STAN: stan, Transmitted: now.UTC().Format("0102150405"),
			RRN: RRN(req.Reference), Terminal: req.Terminal, Kind: req.Kind,
			Amount: req.Amount, Currency: req.Currency,
		}
		if err := c.Reverse(ctx, orig); err != nil {
			return Result{Attempts: attempt}, err
		}
		if attempt >= c.o.MaxAttempts {
			return Result{Attempts: attempt}, fmt.Errorf("%w: %d attempts, each reversed", ErrNoResponse, attempt)
		}
		if err := sleep(ctx, wait); err != nil {
			return Result{Attempts: attempt}, fmt.Errorf("%w: %w", ErrNoResponse, err)
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// Original identifies a request to reverse. It holds no card data: the
// reversal locates the original by field 90 and the terminal (field 41).
type Original struct {
	MTI, STAN, Transmitted string
	RRN, Terminal          string
	Kind                   Kind
	Amount                 capping.Amount
	Currency               capping.Currency
}

// ReversalPendingError says a reversal was not acknowledged before the
// context ended: the original may have been taken. Keep Original and call
// Reverse again; charge again only after it succeeds.
type ReversalPendingError struct {
	Original Original
	err      error
}

func (e *ReversalPendingError) Error() string {
	return fmt.Sprintf("%s: STAN %s at %s: %s", ErrReversalPending, e.Original.STAN, e.Original.Transmitted, e.err.Error())
}

func (e *ReversalPendingError) Unwrap() []error { return []error{ErrReversalPending, e.err} }

// Reverse sends a reversal of orig (0400, then 0401 repeats with growing
// pauses) until the acquirer answers it with any response code (00 undone,
// 25 original not found: nothing to undo) or ctx ends
// (*ReversalPendingError).
func (c *Client) Reverse(ctx context.Context, orig Original) error {
	if _, err := CurrencyNumeric(orig.Currency); err != nil {
		return err
	}
	stan := c.stan.next()
	msg := buildReversal(c.o.Merchant, orig, stan, c.o.Now())
	wait := c.o.RetryWait
	for {
		resp, err := c.send(ctx, msg)
		if err == nil {
			if r, perr := parseResponse(resp, MTIReversalRequest); perr == nil && r.STAN == stan {
				return nil
			}
		}
		var ns errNotSent
		if errors.As(err, &ns) && errors.Is(err, ErrRequest) {
			return err
		}
		msg.MTI(MTIReversalRepeat)
		if serr := sleep(ctx, wait); serr != nil {
			if err == nil {
				err = ErrMessage
			}
			return &ReversalPendingError{Original: orig, err: err}
		}
		wait = min(2*wait, 30*time.Second)
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// stanModulus: STANs run 000001–999999 and wrap.
const stanModulus = 999999

// stanCounter hands out STANs unique across the client's pool for the
// last 999 999 requests: at thousands a second that is minutes, far longer
// than any request's window (send timeout plus reversal). The first is
// random so a restarted client does not reuse the STANs of the one before.
type stanCounter struct{ n atomic.Uint32 }

func (s *stanCounter) next() string {
	v := s.n.Add(1) % stanModulus
	return fmt.Sprintf("%06d", v+1)
}

// buildNetwork builds a network management request (0800).
func buildNetwork(code, stan string, now time.Time) *iso8583.Message {
	msg := iso8583.NewMessage(Spec)
	msg.MTI(MTINetworkRequest)
	_ = msg.Field(7, now.UTC().Format("0102150405"))
	_ = msg.Field(11, stan)
	_ = msg.Field(70, code)
	return msg
}

// buildReversal builds the reversal (0400) of orig. It carries no card
// data: the host finds the original by field 90 and field 41.
func buildReversal(m Merchant, orig Original, stan string, now time.Time) *iso8583.Message {
	cur, _ := CurrencyNumeric(orig.Currency)
	proc := processingPurchase
	if orig.Kind == KindRefund {
		proc = processingRefund
	}
	msg := iso8583.NewMessage(Spec)
	msg.MTI(MTIReversalRequest)
	for _, f := range []struct {
		id int
		v  string
	}{
		{3, proc}, {4, fmt.Sprintf("%012d", orig.Amount)}, {7, now.UTC().Format("0102150405")},
		{11, stan}, {32, m.AcquirerID}, {37, orig.RRN}, {41, orig.Terminal},
		{42, m.ID}, {49, cur},
		{90, originalData(orig.MTI, orig.STAN, orig.Transmitted, m.AcquirerID)},
	} {
		if f.v != "" {
			_ = msg.Field(f.id, f.v)
		}
	}
	return msg
}
