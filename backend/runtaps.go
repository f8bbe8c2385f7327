package backend

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/faregate/faregate/capping"
	"github.com/faregate/faregate/rider"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// Keys returns the shard keys of the shard, [lo, hi): shard I of N is the
// I-th of N equal ranges of the keys (0 to 2³²), so its tokens are one
// range of token order.
func (s Shard) Keys() (lo, hi int64) {
	n := int64(max(s.N, 1))
	return (int64(s.I)<<32 + n - 1) / n, (int64(s.I+1)<<32 + n - 1) / n
}

// Has reports whether token t settles in the shard.
func (s Shard) Has(t rider.Token) bool {
	lo, hi := s.Keys()
	k := shardKey(t)
	return k >= lo && k < hi
}

// keyBytes is the 4-byte token prefix of shard key k (k < 2³²).
func keyBytes(k int64) []byte { return binary.BigEndian.AppendUint32(nil, uint32(k)) }

// RunTaps streams the legs of the run's tokens: first the shard's tokens
// (a temp table on one connection, read from the taps_bucket index: only
// the buckets of the shard's key range), then their earlier charges and
// their legs (taps_token, only the shard's token range), merged in token
// order.
func (s *sqlStore) RunTaps(ctx context.Context, q RunQuery, fn func(RunRider) error) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("backend: run taps: %w", err)
	}
	defer conn.Close()
	if err := s.selectRunTokens(ctx, conn, q); err != nil {
		return err
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `DROP TABLE IF EXISTS run_tokens`)
	charged, err := runCharges(ctx, conn)
	if err != nil {
		return err
	}
	lo, hi := q.Shard.Keys()
	query, args := `SELECT t.token, t.time_ms, t.mode, t.category, t.zones, t.role, t.stop
		FROM run_tokens r CROSS JOIN taps t
		WHERE t.token = r.token AND t.leg = 1 AND t.time_ms < ? AND t.received_ms < ? AND t.token >= ?`,
		[]any{msOf(q.DayEnd), msOf(q.Cutoff), keyBytes(lo)}
	if hi < 1<<32 {
		query, args = query+` AND t.token < ?`, append(args, keyBytes(hi))
	}
	query = s.q(query + ` ORDER BY r.token, t.time_ms`)
	m := &legMerger{charged: charged, fn: fn, strs: map[string]string{}, zones: map[string][]string{}}
	if s.d.dollar {
		err = conn.Raw(func(dc any) error { return pgxLegs(ctx, dc, query, args, m) })
	} else {
		err = sqlLegs(ctx, conn, query, args, m)
	}
	if err != nil {
		return fmt.Errorf("backend: run taps: %w", err)
	}
	return m.flush()
}

// selectRunTokens fills the temp table run_tokens with the tokens of the
// run's shard.
func (s *sqlStore) selectRunTokens(ctx context.Context, conn *sql.Conn, q RunQuery) error {
	if _, err := conn.ExecContext(ctx, `DROP TABLE IF EXISTS run_tokens`); err != nil {
		return fmt.Errorf("backend: run tokens: %w", err)
	}
	// SQLite walks run_tokens in key order and looks each token up;
	// PostgreSQL sorts the (unindexed, quicker to fill) table and merges it
	// with the token index.
	ddl := `CREATE TEMP TABLE run_tokens (token ` + s.d.blob + ` PRIMARY KEY)`
	if s.d.dollar {
		ddl = `CREATE TEMP TABLE run_tokens (token BYTEA)`
		// The DISTINCT of a day's tokens in a hash table, not a sort on disk.
		if _, err := conn.ExecContext(ctx, `SET work_mem = '64MB'`); err != nil {
			return fmt.Errorf("backend: run tokens: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), `RESET work_mem`)
	}
	if _, err := conn.ExecContext(ctx, ddl); err != nil {
		return fmt.Errorf("backend: run tokens: %w", err)
	}
	lo, hi := q.Shard.Keys()
	_, err := conn.ExecContext(ctx, s.q(`INSERT INTO run_tokens SELECT DISTINCT token FROM taps
		WHERE `+s.bucketsOf(lo, hi)+`received_ms >= ? AND received_ms < ? AND leg = 1 AND time_ms < ?
		AND shard >= ? AND shard < ? AND token NOT IN (SELECT token FROM charges WHERE run_day = ?)`),
		msOf(q.ReceivedFrom), msOf(q.Cutoff), msOf(q.DayEnd), lo, hi, int64(q.Day))
	if err != nil {
		return fmt.Errorf("backend: run tokens: %w", err)
	}
	if s.d.dollar {
		_, err = conn.ExecContext(ctx, `ANALYZE run_tokens`)
	}
	if err != nil {
		return fmt.Errorf("backend: run tokens: %w", err)
	}
	return nil
}

// bucketsOf is the condition that leads PostgreSQL to the taps_bucket
// index for the keys [lo, hi): the buckets (the key's top byte) they span.
// SQLite has no such index: it reads taps_received either way.
func (s *sqlStore) bucketsOf(lo, hi int64) string {
	if !s.d.dollar {
		return ""
	}
	var b strings.Builder
	b.WriteString("(shard >> 24) IN (")
	for k := lo >> 24; k <= (hi-1)>>24; k++ {
		if k > lo>>24 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(k, 10))
	}
	b.WriteString(") AND ")
	return b.String()
}

// runCharges sums the earlier charges of the run's tokens.
func runCharges(ctx context.Context, conn *sql.Conn) (map[rider.Token]capping.Amount, error) {
	charged := map[rider.Token]capping.Amount{}
	rows, err := conn.QueryContext(ctx, `SELECT c.token, SUM(c.amount) FROM charges c JOIN run_tokens r ON r.token = c.token GROUP BY c.token`)
	if err != nil {
		return nil, fmt.Errorf("backend: run taps: charges: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var tk []byte
		var sum int64
		if err := rows.Scan(&tk, &sum); err != nil {
			return nil, fmt.Errorf("backend: run taps: charges: %w", err)
		}
		charged[rider.Token(tk)] = capping.Amount(sum)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("backend: run taps: charges: %w", err)
	}
	return charged, nil
}

// legMerger groups the legs of a run (in token order) into riders. It
// allocates per token, not per leg: the few distinct modes, categories,
// roles, stops and zone lists are shared strings.
type legMerger struct {
	charged map[rider.Token]capping.Amount
	fn      func(RunRider) error
	cur     RunRider
	tokStr  string
	strs    map[string]string
	zones   map[string][]string
}

func (m *legMerger) str(b []byte) string {
	if s, ok := m.strs[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(m.strs) < 1<<16 {
		m.strs[s] = s
	}
	return s
}

func (m *legMerger) zoneList(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	if z, ok := m.zones[string(b)]; ok {
		return z
	}
	z := strings.Split(string(b), zonesSep)
	if len(m.zones) < 1<<16 {
		m.zones[string(b)] = z
	}
	return z
}

// leg adds one row: token, time, mode, category, zones, role, stop.
func (m *legMerger) leg(tk []byte, tms int64, mode, cat, zones, role, stop []byte) error {
	if len(tk) != len(m.cur.Token) {
		return fmt.Errorf("stored token of %d bytes", len(tk))
	}
	if token := rider.Token(tk); token != m.cur.Token || len(m.cur.Legs) == 0 {
		if err := m.flush(); err != nil {
			return err
		}
		m.cur.Token, m.tokStr = token, token.String()
	}
	m.cur.Legs = append(m.cur.Legs, capping.Tap{Token: m.tokStr, Time: timeOf(tms), Mode: m.str(mode), Category: m.str(cat),
		Zones: m.zoneList(zones), Role: m.str(role), Stop: m.str(stop)})
	return nil
}

func (m *legMerger) flush() error {
	if len(m.cur.Legs) == 0 {
		return nil
	}
	m.cur.Charged = m.charged[m.cur.Token]
	err := m.fn(m.cur)
	m.cur = RunRider{Legs: m.cur.Legs[:0]}
	return err
}

// sqlLegs reads the legs through database/sql (SQLite).
func sqlLegs(ctx context.Context, conn *sql.Conn, query string, args []any, m *legMerger) error {
	rows, err := conn.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	var tk, mode, cat, zones, role, stop sql.RawBytes
	var tms int64
	for rows.Next() {
		if err := rows.Scan(&tk, &tms, &mode, &cat, &zones, &role, &stop); err != nil {
			return err
		}
		if err := m.leg(tk, tms, mode, cat, zones, role, stop); err != nil {
			return err
		}
	}
	return rows.Err()
}

// pgxLegs reads the legs with pgx's own rows on the connection under
// database/sql: the raw column bytes, no value per column and row.
func pgxLegs(ctx context.Context, dc any, query string, args []any, m *legMerger) error {
	c, ok := dc.(*stdlib.Conn)
	if !ok {
		return fmt.Errorf("connection is a %T, not pgx", dc)
	}
	rows, err := c.Conn().Query(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		v := rows.RawValues()
		if len(v) != 7 {
			return fmt.Errorf("%d columns", len(v))
		}
		tms, err := pgInt8(v[1], rows.FieldDescriptions()[1].Format)
		if err != nil {
			return err
		}
		if err := m.leg(v[0], tms, v[2], v[3], v[4], v[5], v[6]); err != nil {
			return err
		}
	}
	return rows.Err()
}

// pgInt8 decodes a bigint column in PostgreSQL's binary (1) or text (0)
// format.
func pgInt8(b []byte, format int16) (int64, error) {
	if format == 1 {
		if len(b) != 8 {
			return 0, fmt.Errorf("bigint of %d bytes", len(b))
		}
		return int64(binary.BigEndian.Uint64(b)), nil
	}
	return strconv.ParseInt(string(b), 10, 64)
}

// copyCharges writes charges on PostgreSQL with COPY (one statement, so all
// or none of them): the cheapest way in. COPY cannot skip a charge already
// recorded; when one is (another worker on the same shard), it falls back
// to an INSERT that leaves the recorded ones as they are.
func (s *sqlStore) copyCharges(ctx context.Context, charges []Charge) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("backend: add charges: %w", err)
	}
	defer conn.Close()
	cols := strings.Split(chargeColumns, ", ")
	err = conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("connection is a %T, not pgx", dc)
		}
		_, err := c.Conn().CopyFrom(ctx, pgx.Identifier{"charges"}, cols, pgx.CopyFromSlice(len(charges), func(i int) ([]any, error) {
			ch := &charges[i]
			return []any{ch.Token[:], int64(ch.Day), int64(ch.Amount), int64(ch.DayAmount), int64(ch.Adjustment), int64(ch.Taps),
				ch.Currency, ch.Status, msOf(ch.Created)}, nil
		}))
		return err
	})
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		return s.addChargesArrays(ctx, charges)
	}
	if err != nil {
		return fmt.Errorf("backend: add charges: %w", err)
	}
	return nil
}
