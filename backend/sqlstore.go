package backend

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/faregate/faregate/capping"
	"github.com/faregate/faregate/rider"
	"github.com/faregate/faregate/tap"
	"github.com/google/uuid"
)

// sqlStore is the part of the SQLite and PostgreSQL stores that standard
// SQL serves; each engine sets its dialect and may override what it does
// faster its own way.
type sqlStore struct {
	db *sql.DB
	d  dialect
}

type dialect struct {
	name string
	// postgres: $1, $2 … instead of ?
	dollar bool
	// greatest is the two-argument maximum: MAX on SQLite, GREATEST on PostgreSQL.
	greatest string
	// rowAtATime: insert taps with one prepared single-row statement.
	rowAtATime bool
	// blob is the type of byte strings.
	blob string
	// maxParams bounds the parameters of one statement.
	maxParams int
	// isConflict reports a unique-constraint violation.
	isConflict func(error) bool
}

// q rewrites ? placeholders for the dialect.
func (s *sqlStore) q(query string) string {
	if !s.d.dollar {
		return query
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

func msOf(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func timeOf(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

// shardKey is the first four bytes of a token, big-endian: Shard.Keys
// says which shard a token settles in.
func shardKey(t rider.Token) int64 { return int64(binary.BigEndian.Uint32(t[:4])) }

// zonesSep joins zones in a column: the contract refuses control characters
// in zone names, so the unit separator cannot occur in one.
const zonesSep = "\x1f"

func (s *sqlStore) Close() error { return s.db.Close() }

func (s *sqlStore) AddGate(ctx context.Context, id string, pub ed25519.PublicKey, now time.Time) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO gates (id, pubkey, added_ms) VALUES (?, ?, ?)`), id, []byte(pub), msOf(now))
	if err != nil && s.d.isConflict(err) {
		return fmt.Errorf("%w: %q", ErrGateExists, id)
	}
	if err != nil {
		return fmt.Errorf("backend: add gate: %w", err)
	}
	return nil
}

func (s *sqlStore) SetGateDisabled(ctx context.Context, id string, disabled bool) error {
	v := 0
	if disabled {
		v = 1
	}
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE gates SET disabled = ? WHERE id = ?`), v, id)
	if err != nil {
		return fmt.Errorf("backend: disable gate: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: %q", ErrNoGate, id)
	}
	return nil
}

func (s *sqlStore) Gates(ctx context.Context) ([]Gate, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, pubkey, disabled, added_ms, last_seen_ms, last_seq, backlog, oldest_unsent_ms, denylist_version, taps FROM gates ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("backend: gates: %w", err)
	}
	defer rows.Close()
	var out []Gate
	for rows.Next() {
		var g Gate
		var pub []byte
		var disabled, added, seen, oldest int64
		var seq, dl int64
		if err := rows.Scan(&g.ID, &pub, &disabled, &added, &seen, &seq, &g.Backlog, &oldest, &dl, &g.Taps); err != nil {
			return nil, fmt.Errorf("backend: gates: %w", err)
		}
		g.Key = ed25519.PublicKey(pub)
		g.Disabled = disabled != 0
		g.Added, g.LastSeen, g.OldestUnsent = timeOf(added), timeOf(seen), timeOf(oldest)
		g.LastSeq, g.DenylistVersion = uint64(seq), uint64(dl)
		out = append(out, g)
	}
	return out, rows.Err()
}

// tapColumns are the columns StoreBatches fills, in order.
const tapColumns = "id, gate, seq, time_ms, received_ms, token, shard, leg, mode, category, zones, role, stop, record"

const nTapColumns = 14

// encodeRecord is the record column of a tap: its JSON without the
// sealed card data (that goes to the vault only).
func encodeRecord(r *tap.Record) ([]byte, error) {
	sealed := r.Sealed
	r.Sealed = nil
	rec, err := json.Marshal(r)
	r.Sealed = sealed
	return rec, err
}

// encodeRecords encodes the record column of every tap of b.
func encodeRecords(b *tap.Batch) ([][]byte, error) {
	out := make([][]byte, len(b.Taps))
	for i := range b.Taps {
		var err error
		if out[i], err = encodeRecord(&b.Taps[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// tapRow turns a record into the column values of tapColumns; rec is its
// encoded record when the caller has it already (nil: encoded here).
func tapRow(r *tap.Record, received int64, rec []byte) ([]any, error) {
	if rec == nil {
		var err error
		if rec, err = encodeRecord(r); err != nil {
			return nil, err
		}
	}
	var token any
	var shard int64
	if !r.Token.IsZero() {
		token = r.Token[:]
		shard = shardKey(r.Token)
	}
	leg := 0
	if isLeg(r) {
		leg = 1
	}
	return []any{r.ID[:], r.Gate, int64(r.Seq), r.Time.UnixMilli(), received, token, shard, leg,
		r.Location.Mode, r.Category, strings.Join(r.Location.Zones, zonesSep), string(r.Location.Role), r.Location.Stop, rec}, nil
}

// isLeg reports whether a tap is a leg as it arrives: the gate opened for
// a known rider (a boarding, a tap-on or a tap-off: the engine's journeys
// rules pair tap-ons with tap-offs, and settlement leaves out the tap-offs
// of modes no such rule pairs, see ratesRole), and it is not provisional (a
// QR tap becomes a leg only once the back office confirms it:
// RecordQROutcomes).
func isLeg(r *tap.Record) bool { return opensLeg(r) && !r.Provisional }

// opensLeg reports whether a tap is a leg once confirmed.
func opensLeg(r *tap.Record) bool {
	return r.Decision == tap.Open && !r.Token.IsZero()
}

func (s *sqlStore) StoreBatches(ctx context.Context, batches []*tap.Batch, received time.Time) (newTaps []int, err error) {
	return s.storeEncoded(ctx, batches, nil, received)
}

// storeEncoded is StoreBatches with each batch's records already encoded
// (recs[i] for batches[i], by encodeRecords; nil: encoded here): ingest
// encodes them in the request that brought them, in parallel, rather than
// in its single writer.
func (s *sqlStore) storeEncoded(ctx context.Context, batches []*tap.Batch, recs [][][]byte, received time.Time) (newTaps []int, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("backend: store taps: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	recv := received.UnixMilli()
	newTaps = make([]int, len(batches))
	if s.d.rowAtATime {
		if err := s.insertTapsPrepared(ctx, tx, batches, recs, recv, newTaps); err != nil {
			return nil, err
		}
	} else {
		perStmt := s.d.maxParams / nTapColumns
		for bi, b := range batches {
			for start := 0; start < len(b.Taps); start += perStmt {
				end := min(start+perStmt, len(b.Taps))
				var enc [][]byte
				if recs != nil && recs[bi] != nil {
					enc = recs[bi][start:end]
				}
				n, err := s.insertTaps(ctx, tx, b.Taps[start:end], enc, recv)
				if err != nil {
					return nil, err
				}
				newTaps[bi] += n
			}
		}
	}
	if err := s.storeSealed(ctx, tx, batches); err != nil {
		return nil, err
	}
	if err := s.updateGates(ctx, tx, batches, newTaps, recv); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("backend: store taps: commit: %w", err)
	}
	return newTaps, nil
}

// insertTapsPrepared inserts one row at a time with one prepared
// statement: on SQLite (in process, no round trips) that beats parsing a
// statement of thousands of parameters.
func (s *sqlStore) insertTapsPrepared(ctx context.Context, tx *sql.Tx, batches []*tap.Batch, recs [][][]byte, recv int64, newTaps []int) error {
	st, err := tx.PrepareContext(ctx, "INSERT INTO taps ("+tapColumns+") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (id) DO NOTHING")
	if err != nil {
		return fmt.Errorf("backend: store taps: %w", err)
	}
	defer st.Close()
	for bi, b := range batches {
		for i := range b.Taps {
			var rec []byte
			if recs != nil && recs[bi] != nil {
				rec = recs[bi][i]
			}
			row, err := tapRow(&b.Taps[i], recv, rec)
			if err != nil {
				return fmt.Errorf("backend: store taps: %w", err)
			}
			res, err := st.ExecContext(ctx, row...)
			if err != nil {
				return fmt.Errorf("backend: store taps: %w", err)
			}
			if n, err := res.RowsAffected(); err == nil {
				newTaps[bi] += int(n)
			}
		}
	}
	return nil
}

func (s *sqlStore) insertTaps(ctx context.Context, tx *sql.Tx, taps []tap.Record, recs [][]byte, recv int64) (int, error) {
	var b strings.Builder
	b.WriteString("INSERT INTO taps (" + tapColumns + ") VALUES ")
	args := make([]any, 0, len(taps)*nTapColumns)
	for i := range taps {
		var rec []byte
		if recs != nil {
			rec = recs[i]
		}
		row, err := tapRow(&taps[i], recv, rec)
		if err != nil {
			return 0, fmt.Errorf("backend: store taps: %w", err)
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?,?,?,?,?,?,?,?,?,?,?,?,?,?)")
		args = append(args, row...)
	}
	b.WriteString(" ON CONFLICT (id) DO NOTHING")
	res, err := tx.ExecContext(ctx, s.q(b.String()), args...)
	if err != nil {
		return 0, fmt.Errorf("backend: store taps: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("backend: store taps: %w", err)
	}
	return int(n), nil
}

// storeSealed keeps the newest sealed card data of each token.
func (s *sqlStore) storeSealed(ctx context.Context, tx *sql.Tx, batches []*tap.Batch) error {
	newest := map[rider.Token]*tap.Record{}
	for _, b := range batches {
		for i := range b.Taps {
			r := &b.Taps[i]
			if len(r.Sealed) == 0 || r.Token.IsZero() {
				continue
			}
			if old, ok := newest[r.Token]; !ok || r.Time.After(old.Time) {
				newest[r.Token] = r
			}
		}
	}
	if len(newest) == 0 {
		return nil
	}
	recs := make([]*tap.Record, 0, len(newest))
	for _, r := range newest {
		recs = append(recs, r)
	}
	const cols = 5
	per := s.d.maxParams / cols
	for start := 0; start < len(recs); start += per {
		part := recs[start:min(start+per, len(recs))]
		var b strings.Builder
		b.WriteString("INSERT INTO vault (token, gate, tap_id, time_ms, sealed) VALUES ")
		args := make([]any, 0, len(part)*cols)
		for i, r := range part {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString("(?,?,?,?,?)")
			args = append(args, r.Token[:], r.Gate, r.ID[:], r.Time.UnixMilli(), r.Sealed)
		}
		b.WriteString(` ON CONFLICT (token) DO UPDATE SET gate = excluded.gate, tap_id = excluded.tap_id,
			time_ms = excluded.time_ms, sealed = excluded.sealed WHERE excluded.time_ms >= vault.time_ms`)
		if _, err := tx.ExecContext(ctx, s.q(b.String()), args...); err != nil {
			return fmt.Errorf("backend: vault: %w", err)
		}
	}
	return nil
}

func (s *sqlStore) updateGates(ctx context.Context, tx *sql.Tx, batches []*tap.Batch, newTaps []int, recv int64) error {
	// Several batches of one gate may share a transaction: the last one's
	// report wins, the counts add up.
	type report struct {
		b    *tap.Batch
		seq  uint64
		taps int
	}
	reports := map[string]*report{}
	var order []string
	for bi, b := range batches {
		r, ok := reports[b.Gate]
		if !ok {
			r = &report{}
			reports[b.Gate] = r
			order = append(order, b.Gate)
		}
		r.b = b
		r.taps += newTaps[bi]
		for i := range b.Taps {
			r.seq = max(r.seq, b.Taps[i].Seq)
		}
	}
	query := s.q(`UPDATE gates SET last_seen_ms = ?, last_seq = ` + s.d.greatest + `(last_seq, ?), backlog = ?,
		oldest_unsent_ms = ?, denylist_version = ?, taps = taps + ? WHERE id = ?`)
	for _, g := range order {
		r := reports[g]
		backlog, oldest := afterAck(r.b)
		if _, err := tx.ExecContext(ctx, query, recv, int64(r.seq), backlog, oldest, int64(r.b.DenylistVersion), r.taps, g); err != nil {
			return fmt.Errorf("backend: gate report: %w", err)
		}
	}
	return nil
}

// afterAck is what a gate holds once the batch it just sent is
// acknowledged: its reported backlog counts the batch, and it sends its
// oldest taps first, so what is left is newer than the batch's newest
// tap (a lower bound on the oldest unsent tap's time, so its age is never
// understated). A gate that goes quiet after draining shows 0, not the
// size of its last batch.
func afterAck(b *tap.Batch) (backlog, oldestMS int64) {
	backlog = max(b.Backlog-int64(len(b.Taps)), 0)
	if backlog == 0 || b.OldestUnsent == nil {
		return backlog, 0
	}
	oldest := *b.OldestUnsent
	for i := range b.Taps {
		if b.Taps[i].Time.After(oldest) {
			oldest = b.Taps[i].Time
		}
	}
	return backlog, msOf(oldest)
}

func (s *sqlStore) Taps(ctx context.Context, token rider.Token, from, to time.Time) ([]StoredTap, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT t.record, t.received_ms, COALESCE(o.outcome, ''), COALESCE(o.reason, ''), COALESCE(o.category, '')
		FROM taps t LEFT JOIN qr_outcomes o ON o.tap_id = t.id
		WHERE t.token = ? AND t.time_ms >= ? AND t.time_ms < ? ORDER BY t.time_ms, t.seq`),
		token[:], msOf(from), msOf(to))
	if err != nil {
		return nil, fmt.Errorf("backend: taps: %w", err)
	}
	defer rows.Close()
	var out []StoredTap
	for rows.Next() {
		var rec []byte
		var recv int64
		var st StoredTap
		if err := rows.Scan(&rec, &recv, &st.QROutcome, &st.QRReason, &st.QRCategory); err != nil {
			return nil, fmt.Errorf("backend: taps: %w", err)
		}
		if err := json.Unmarshal(rec, &st.Record); err != nil {
			return nil, fmt.Errorf("backend: taps: stored record: %w", err)
		}
		st.Received = timeOf(recv)
		out = append(out, st)
	}
	return out, rows.Err()
}

func (s *sqlStore) ScanTaps(ctx context.Context, from, to time.Time, fn func(*StoredTap) error) error {
	// received_ms leads an index; time_ms alone has none.
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT t.record, t.received_ms, COALESCE(o.outcome, ''), COALESCE(o.reason, ''), COALESCE(o.category, '')
		FROM taps t LEFT JOIN qr_outcomes o ON o.tap_id = t.id
		WHERE t.received_ms >= ? AND t.time_ms >= ? AND t.time_ms < ?`),
		from.Add(-ReceivedSlack).UnixMilli(), from.UnixMilli(), to.UnixMilli())
	if err != nil {
		return fmt.Errorf("backend: scan taps: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var rec []byte
		var recv int64
		var st StoredTap
		if err := rows.Scan(&rec, &recv, &st.QROutcome, &st.QRReason, &st.QRCategory); err != nil {
			return fmt.Errorf("backend: scan taps: %w", err)
		}
		if err := json.Unmarshal(rec, &st.Record); err != nil {
			return fmt.Errorf("backend: scan taps: stored record: %w", err)
		}
		st.Received = timeOf(recv)
		if err := fn(&st); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("backend: scan taps: %w", err)
	}
	return nil
}

func (s *sqlStore) CountTaps(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM taps`).Scan(&n); err != nil {
		return 0, fmt.Errorf("backend: count taps: %w", err)
	}
	return n, nil
}

func (s *sqlStore) FirstReceived(ctx context.Context) (time.Time, bool, error) {
	var v sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT MIN(received_ms) FROM taps`).Scan(&v); err != nil {
		return time.Time{}, false, fmt.Errorf("backend: first tap: %w", err)
	}
	return timeOf(v.Int64), v.Valid, nil
}

func (s *sqlStore) SealedCard(ctx context.Context, token rider.Token) (SealedCard, bool, error) {
	c := SealedCard{Token: token}
	var id []byte
	var t int64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT gate, tap_id, time_ms, sealed FROM vault WHERE token = ?`), token[:]).Scan(&c.Gate, &id, &t, &c.Sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return SealedCard{}, false, nil
	}
	if err != nil {
		return SealedCard{}, false, fmt.Errorf("backend: vault: %w", err)
	}
	if c.TapID, err = uuid.FromBytes(id); err != nil {
		return SealedCard{}, false, fmt.Errorf("backend: vault: tap id: %w", err)
	}
	c.Time = timeOf(t)
	return c, true, nil
}

func (s *sqlStore) BeginRun(ctx context.Context, day capping.Date, cutoff, now time.Time) (Run, error) {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO runs (day, cutoff_ms, started_ms) VALUES (?, ?, ?) ON CONFLICT (day) DO NOTHING`),
		int64(day), msOf(cutoff), msOf(now))
	if err != nil {
		return Run{}, fmt.Errorf("backend: begin run: %w", err)
	}
	runs, err := s.runs(ctx, s.q(`WHERE day = ?`), int64(day))
	if err != nil {
		return Run{}, err
	}
	if len(runs) != 1 {
		return Run{}, fmt.Errorf("backend: begin run: run of %s not found", day)
	}
	return runs[0], nil
}

func (s *sqlStore) Runs(ctx context.Context) ([]Run, error) { return s.runs(ctx, "") }

func (s *sqlStore) runs(ctx context.Context, where string, args ...any) ([]Run, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT day, cutoff_ms, started_ms FROM runs `+where+` ORDER BY day`, args...)
	if err != nil {
		return nil, fmt.Errorf("backend: runs: %w", err)
	}
	var out []Run
	for rows.Next() {
		var day, cutoff, started int64
		if err := rows.Scan(&day, &cutoff, &started); err != nil {
			rows.Close()
			return nil, fmt.Errorf("backend: runs: %w", err)
		}
		out = append(out, Run{Day: capping.Date(day), Cutoff: timeOf(cutoff), Started: timeOf(started)})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("backend: runs: %w", err)
	}
	srows, err := s.db.QueryContext(ctx, `SELECT day, shard, shards FROM run_shards ORDER BY day, shards, shard`)
	if err != nil {
		return nil, fmt.Errorf("backend: runs: %w", err)
	}
	defer srows.Close()
	for srows.Next() {
		var day int64
		var sh Shard
		if err := srows.Scan(&day, &sh.I, &sh.N); err != nil {
			return nil, fmt.Errorf("backend: runs: %w", err)
		}
		if i := slices.IndexFunc(out, func(r Run) bool { return r.Day == capping.Date(day) }); i >= 0 {
			out[i].Finished = append(out[i].Finished, sh)
		}
	}
	return out, srows.Err()
}

func (s *sqlStore) FinishShard(ctx context.Context, day capping.Date, sh Shard, now time.Time) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO run_shards (day, shard, shards, finished_ms) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`),
		int64(day), sh.I, sh.N, msOf(now))
	if err != nil {
		return fmt.Errorf("backend: finish shard: %w", err)
	}
	return nil
}

const chargeColumns = "token, run_day, amount, day_amount, adjustment, taps, currency, status, created_ms"

func (s *sqlStore) AddCharges(ctx context.Context, charges []Charge) error {
	if len(charges) == 0 {
		return nil
	}
	if s.d.dollar {
		return s.copyCharges(ctx, charges)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("backend: add charges: %w", err)
	}
	defer tx.Rollback()
	const cols = 9
	per := s.d.maxParams / cols
	for start := 0; start < len(charges); start += per {
		part := charges[start:min(start+per, len(charges))]
		var b strings.Builder
		b.WriteString("INSERT INTO charges (" + chargeColumns + ") VALUES ")
		args := make([]any, 0, len(part)*cols)
		for i, c := range part {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString("(?,?,?,?,?,?,?,?,?)")
			args = append(args, c.Token[:], int64(c.Day), int64(c.Amount), int64(c.DayAmount), int64(c.Adjustment), c.Taps, c.Currency, c.Status, msOf(c.Created))
		}
		b.WriteString(" ON CONFLICT (token, run_day) DO NOTHING")
		if _, err := tx.ExecContext(ctx, s.q(b.String()), args...); err != nil {
			return fmt.Errorf("backend: add charges: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("backend: add charges: %w", err)
	}
	return nil
}

// addChargesArrays inserts the charges on PostgreSQL as one statement over
// arrays, one per column: PostgreSQL parses and plans a short statement
// once, where a VALUES list of thousands of rows costs more than the rows.
func (s *sqlStore) addChargesArrays(ctx context.Context, charges []Charge) error {
	n := len(charges)
	tokens := make([][]byte, n)
	days, amounts, dayAmounts, adjs, taps, created := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	currencies, statuses := make([]string, n), make([]string, n)
	for i := range charges {
		c := &charges[i]
		tokens[i] = c.Token[:]
		days[i], amounts[i], dayAmounts[i], adjs[i] = int64(c.Day), int64(c.Amount), int64(c.DayAmount), int64(c.Adjustment)
		taps[i], created[i], currencies[i], statuses[i] = int64(c.Taps), msOf(c.Created), c.Currency, c.Status
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO charges (`+chargeColumns+`)
		SELECT * FROM unnest($1::bytea[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::text[], $8::text[], $9::bigint[])
		ON CONFLICT (token, run_day) DO NOTHING`,
		tokens, days, amounts, dayAmounts, adjs, taps, currencies, statuses, created)
	if err != nil {
		return fmt.Errorf("backend: add charges: %w", err)
	}
	return nil
}

const chargeSelect = `SELECT id, token, run_day, amount, day_amount, adjustment, taps, currency, status, outcome, reference, outcome_ms, created_ms,
	category, action, attempts, resubmissions, first_declined_ms, next_retry_ms, not_before_ms, reversal FROM charges `

func (s *sqlStore) charges(ctx context.Context, where string, args ...any) ([]Charge, error) {
	rows, err := s.db.QueryContext(ctx, s.q(chargeSelect+where), args...)
	if err != nil {
		return nil, fmt.Errorf("backend: charges: %w", err)
	}
	defer rows.Close()
	var out []Charge
	for rows.Next() {
		var c Charge
		var tk []byte
		var day, amount, dayAmount, adj, outcomeMS, created, firstMS, nextMS, notBeforeMS int64
		var reversal string
		if err := rows.Scan(&c.ID, &tk, &day, &amount, &dayAmount, &adj, &c.Taps, &c.Currency, &c.Status, &c.Outcome, &c.Reference, &outcomeMS, &created,
			&c.Category, &c.Action, &c.Attempts, &c.Resubmissions, &firstMS, &nextMS, &notBeforeMS, &reversal); err != nil {
			return nil, fmt.Errorf("backend: charges: %w", err)
		}
		c.Token = rider.Token(tk)
		c.Day, c.Amount, c.DayAmount, c.Adjustment = capping.Date(day), capping.Amount(amount), capping.Amount(dayAmount), capping.Amount(adj)
		c.OutcomeAt, c.Created = timeOf(outcomeMS), timeOf(created)
		c.FirstDeclined, c.NextRetry, c.NotBefore = timeOf(firstMS), timeOf(nextMS), timeOf(notBeforeMS)
		if reversal != "" {
			c.Reversal = []byte(reversal)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

func (s *sqlStore) Charges(ctx context.Context, day capping.Date) ([]Charge, error) {
	return s.charges(ctx, `WHERE run_day = ? ORDER BY token`, int64(day))
}

func (s *sqlStore) RiderCharges(ctx context.Context, token rider.Token) ([]Charge, error) {
	return s.charges(ctx, `WHERE token = ? ORDER BY run_day`, token[:])
}

func (s *sqlStore) ChargesToSend(ctx context.Context, limit int) ([]Charge, error) {
	return s.charges(ctx, `WHERE status = 'pending' ORDER BY id LIMIT ?`, limit)
}

func (s *sqlStore) RecordOutcome(ctx context.Context, id int64, o Outcome) error {
	switch o.Status {
	case ChargeApproved, ChargeDeclined, ChargeFailed:
	default:
		return fmt.Errorf("backend: record outcome: status %q", o.Status)
	}
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE charges SET status = ?, outcome = ?, reference = ?, outcome_ms = ?,
		category = ?, action = ?, first_declined_ms = ?, next_retry_ms = ?, not_before_ms = ?,
		attempts = attempts + 1, resubmissions = resubmissions + (CASE WHEN first_declined_ms > 0 THEN 1 ELSE 0 END)
		WHERE id = ?`),
		o.Status, o.Code, o.Reference, msOf(o.At), o.Category, o.Action, msOrZero(o.FirstDeclined), msOrZero(o.NextRetry), msOrZero(o.NotBefore), id)
	if err != nil {
		return fmt.Errorf("backend: record outcome: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: %d", ErrNoCharge, id)
	}
	return nil
}

func msOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return msOf(t)
}

func (s *sqlStore) ChargesDue(ctx context.Context, now time.Time, limit int) ([]Charge, error) {
	return s.charges(ctx, `WHERE reversal = '' AND ((status = 'pending' AND amount <> 0) OR (status = 'declined' AND next_retry_ms > 0 AND next_retry_ms <= ?))
		ORDER BY id LIMIT ?`, msOf(now), limit)
}

func (s *sqlStore) Retapped(ctx context.Context, limit int) ([]Charge, error) {
	return s.charges(ctx, `WHERE status = 'declined' AND EXISTS (SELECT 1 FROM taps t WHERE t.token = charges.token
		AND t.received_ms > outcome_ms AND t.received_ms > retap_seen_ms) ORDER BY id LIMIT ?`, limit)
}

func (s *sqlStore) MarkRetap(ctx context.Context, id int64, seen, at time.Time) error {
	query, args := `UPDATE charges SET retap_seen_ms = ? WHERE id = ?`, []any{msOf(seen), id}
	if !at.IsZero() {
		query, args = `UPDATE charges SET retap_seen_ms = ?, next_retry_ms = ? WHERE id = ?`, []any{msOf(seen), msOf(at), id}
	}
	res, err := s.db.ExecContext(ctx, s.q(query), args...)
	if err != nil {
		return fmt.Errorf("backend: mark retap: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: %d", ErrNoCharge, id)
	}
	return nil
}

func (s *sqlStore) Debts(ctx context.Context, token rider.Token) ([]Charge, error) {
	return s.charges(ctx, `WHERE token = ? AND status = 'declined' ORDER BY id`, token[:])
}

func (s *sqlStore) TokensToCheck(ctx context.Context, limit int) ([]SealedCard, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT token, gate, tap_id, time_ms FROM vault v
		WHERE NOT EXISTS (SELECT 1 FROM account_checks a WHERE a.token = v.token) ORDER BY token LIMIT ?`), limit)
	if err != nil {
		return nil, fmt.Errorf("backend: tokens to check: %w", err)
	}
	defer rows.Close()
	var out []SealedCard
	for rows.Next() {
		var sc SealedCard
		var tk, id []byte
		var ms int64
		if err := rows.Scan(&tk, &sc.Gate, &id, &ms); err != nil {
			return nil, fmt.Errorf("backend: tokens to check: %w", err)
		}
		if len(tk) != len(sc.Token) || len(id) != len(sc.TapID) {
			return nil, fmt.Errorf("backend: tokens to check: malformed vault row")
		}
		sc.Token, sc.TapID, sc.Time = rider.Token(tk), uuid.UUID(id), timeOf(ms)
		out = append(out, sc)
	}
	return out, rows.Err()
}

func (s *sqlStore) RecordCheck(ctx context.Context, token rider.Token, code string, at time.Time) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO account_checks (token, code, checked_ms) VALUES (?, ?, ?)
		ON CONFLICT (token) DO UPDATE SET code = excluded.code, checked_ms = excluded.checked_ms`), token[:], code, msOf(at))
	if err != nil {
		return fmt.Errorf("backend: record check: %w", err)
	}
	return nil
}

func (s *sqlStore) HoldReversal(ctx context.Context, id int64, reversal []byte) error {
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE charges SET reversal = ? WHERE id = ?`), string(reversal), id)
	if err != nil {
		return fmt.Errorf("backend: hold reversal: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: %d", ErrNoCharge, id)
	}
	return nil
}

func (s *sqlStore) HeldReversals(ctx context.Context) ([]Charge, error) {
	return s.charges(ctx, `WHERE reversal <> '' ORDER BY id`)
}
