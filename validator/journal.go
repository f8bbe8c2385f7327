package validator

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"modernc.org/sqlite" // also the "sqlite" database/sql driver
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/faregate/faregate/rider"
	"github.com/faregate/faregate/tap"
)

// The journal is one SQLite database in WAL mode with synchronous=FULL:
// COMMIT returns only after the WAL frames of the transaction are fsynced,
// so a tap whose Append returned survives a power cut. One connection, one
// writer. Each row keeps the whole tap.Record as JSON (its Sealed card data
// is opaque to the gate) beside the columns the gate queries.
const journalSchema = `
CREATE TABLE IF NOT EXISTS taps (
	seq      INTEGER PRIMARY KEY AUTOINCREMENT, -- the gate's gapless counter; never reused
	id       BLOB    NOT NULL UNIQUE,           -- UUIDv7, 16 bytes
	time_ns  INTEGER NOT NULL,                  -- UTC Unix nanoseconds
	decision TEXT    NOT NULL,
	token    BLOB,                              -- rider token (16 bytes) or NULL
	grp      TEXT    NOT NULL DEFAULT '',       -- pass-back group
	record   BLOB    NOT NULL,                  -- tap.Record, JSON
	uploaded INTEGER                            -- Unix ns of the acknowledgement; NULL: unsent
);
CREATE INDEX IF NOT EXISTS taps_unsent ON taps(seq) WHERE uploaded IS NULL;
CREATE INDEX IF NOT EXISTS taps_uploaded ON taps(uploaded) WHERE uploaded IS NOT NULL;
CREATE INDEX IF NOT EXISTS taps_passback ON taps(time_ns) WHERE decision = 'open';
`

var (
	// ErrJournalFull: the journal holds MaxBytes of taps not yet uploaded;
	// nothing more can be recorded (docs/validator.md, "When the disk fills").
	ErrJournalFull = errors.New("validator: journal full")
	// ErrJournal: the journal database failed.
	ErrJournal = errors.New("validator: journal")
)

// JournalOptions tune a journal. The zero value works.
type JournalOptions struct {
	// MaxBytes bounds the database (default 1 GiB, about 900 000 taps).
	// When an append would pass it, uploaded taps are pruned whatever
	// their age; when only unsent taps remain, Append fails with
	// ErrJournalFull.
	MaxBytes int64
	// Retention is how long uploaded taps stay for inspection (default 7
	// days); Prune removes older ones.
	Retention time.Duration
	// NoSync turns synchronous=FULL into NORMAL: a power cut may lose the
	// last commits. For benchmarks that measure the difference only.
	NoSync bool
	// ReadOnly opens an existing journal for inspection, beside a running
	// gate (faregate journal).
	ReadOnly bool
	Now      func() time.Time // nil: time.Now
}

// Journal is a gate's durable record of every decided tap. It is safe for
// concurrent use; writes are serialised.
type Journal struct {
	db *sql.DB
	o  JournalOptions

	mu      sync.Mutex // serialises writers and guards the fields below
	next    uint64     // the next sequence number
	bytes   int64      // estimate of the database size
	unsent  int64
	oldest  time.Time // of the oldest unsent tap; zero when none
	opened  int64
	total   int64
	insert  *sql.Stmt
	onWrite func() // tests: after the row is written, before COMMIT
}

// OpenJournal opens (creating it if needed) the journal at path.
func OpenJournal(ctx context.Context, path string, o JournalOptions) (*Journal, error) {
	if o.MaxBytes <= 0 {
		o.MaxBytes = 1 << 30
	}
	if o.Retention <= 0 {
		o.Retention = 7 * 24 * time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	sync := "FULL"
	if o.NoSync {
		sync = "NORMAL"
	}
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(" + sync + ")", "foreign_keys(OFF)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	if o.ReadOnly {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrJournal, err)
		}
		q = url.Values{"mode": {"ro"}, "_pragma": {"busy_timeout(10000)"}}
	}
	j, err := openJournalDB(ctx, path, q, o)
	if err != nil && o.ReadOnly && isReadOnlyErr(err) {
		// A gate killed mid-write leaves a WAL that the next connection
		// must recover, and a read-only connection cannot. No writer is
		// alive then (a live one would have recovered it): open
		// read-write, but refuse every write statement.
		q = url.Values{"_pragma": {"busy_timeout(10000)", "query_only(1)"}}
		j, err = openJournalDB(ctx, path, q, o)
	}
	return j, err
}

func openJournalDB(ctx context.Context, path string, q url.Values, o JournalOptions) (*Journal, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("%w: open: %w", ErrJournal, err)
	}
	db.SetMaxOpenConns(1)
	db.SetConnMaxIdleTime(0)
	db.SetConnMaxLifetime(0)
	j := &Journal{db: db, o: o}
	if err := j.init(ctx); err != nil {
		j.db.Close()
		return nil, err
	}
	return j, nil
}

// isReadOnlyErr reports the errors of a read-only connection that would
// have to write to open the journal: SQLITE_READONLY and its extended codes
// (SQLITE_READONLY_RECOVERY: "attempt to write a readonly database") and
// SQLITE_CANTOPEN (the WAL index file is missing and must be created).
func isReadOnlyErr(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN:
		return true
	}
	return false
}

func (j *Journal) init(ctx context.Context) error {
	var check string
	if err := j.db.QueryRowContext(ctx, "PRAGMA quick_check").Scan(&check); err != nil {
		return fmt.Errorf("%w: check: %w", ErrJournal, err)
	}
	if check != "ok" {
		return fmt.Errorf("%w: damaged database: %s", ErrJournal, clipString(check, 200))
	}
	if err := j.ensureSchema(ctx); err != nil {
		return err
	}
	var last sql.NullInt64
	if err := j.db.QueryRowContext(ctx, "SELECT seq FROM sqlite_sequence WHERE name = 'taps'").Scan(&last); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: sequence: %w", ErrJournal, err)
	}
	j.next = uint64(last.Int64) + 1
	if !j.o.ReadOnly {
		var err error
		j.insert, err = j.db.PrepareContext(ctx,
			"INSERT INTO taps (seq, id, time_ns, decision, token, grp, record) VALUES (?, ?, ?, ?, ?, ?, ?)")
		if err != nil {
			return fmt.Errorf("%w: prepare: %w", ErrJournal, err)
		}
	}
	return j.refresh(ctx)
}

// ensureSchema creates the tables in one transaction, so a gate killed
// while creating its journal leaves either no schema or all of it. A
// read-only look at a journal killed before its schema existed sees an
// empty journal (an empty in-memory one stands in for it).
func (j *Journal) ensureSchema(ctx context.Context) error {
	if j.o.ReadOnly {
		var n int
		if err := j.db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'taps'").Scan(&n); err != nil {
			return fmt.Errorf("%w: schema: %w", ErrJournal, err)
		}
		if n > 0 {
			return nil
		}
		db, err := sql.Open("sqlite", "file::memory:")
		if err != nil {
			return fmt.Errorf("%w: open: %w", ErrJournal, err)
		}
		db.SetMaxOpenConns(1)
		j.db.Close()
		j.db = db
	}
	tx, err := j.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%w: schema: %w", ErrJournal, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit: a no-op
	if _, err := tx.ExecContext(ctx, journalSchema); err != nil {
		return fmt.Errorf("%w: schema: %w", ErrJournal, err)
	}
	// sqlite_sequence appears with the first AUTOINCREMENT row; create it
	// now so that reading the counter never depends on a tap existing.
	if _, err := tx.ExecContext(ctx, "INSERT INTO sqlite_sequence (name, seq) SELECT 'taps', 0 WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'taps')"); err != nil {
		return fmt.Errorf("%w: schema: %w", ErrJournal, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%w: schema: %w", ErrJournal, err)
	}
	return nil
}

// resync reads the next sequence number from the database.
func (j *Journal) resync(ctx context.Context) {
	var last sql.NullInt64
	if err := j.db.QueryRowContext(ctx, "SELECT seq FROM sqlite_sequence WHERE name = 'taps'").Scan(&last); err == nil {
		j.next = uint64(last.Int64) + 1
	}
	j.refresh(ctx) //nolint:errcheck // best effort: counters only
}

// refresh recomputes the counters and the size estimate from the database.
func (j *Journal) refresh(ctx context.Context) error {
	var oldest sql.NullInt64
	err := j.db.QueryRowContext(ctx, `SELECT count(*), count(*) FILTER (WHERE decision = 'open'),
		count(*) FILTER (WHERE uploaded IS NULL),
		(SELECT time_ns FROM taps WHERE uploaded IS NULL ORDER BY seq LIMIT 1) FROM taps`).
		Scan(&j.total, &j.opened, &j.unsent, &oldest)
	if err != nil {
		return fmt.Errorf("%w: counts: %w", ErrJournal, err)
	}
	j.oldest = time.Time{}
	if oldest.Valid {
		j.oldest = time.Unix(0, oldest.Int64).UTC()
	}
	var pages, free, size int64
	for q, v := range map[string]*int64{"PRAGMA page_count": &pages, "PRAGMA freelist_count": &free, "PRAGMA page_size": &size} {
		if err := j.db.QueryRowContext(ctx, q).Scan(v); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrJournal, strings.ToLower(q), err)
		}
	}
	j.bytes = (pages - free) * size
	return nil
}

// Close closes the database.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.insert != nil {
		j.insert.Close()
	}
	return j.db.Close()
}

// rowOverhead is what a row costs beside its record: columns, index
// entries, b-tree slack.
const rowOverhead = 160

// Append gives r the next sequence number and commits it durably. On
// success r.Seq is set and the tap is on disk; on failure nothing was
// written and the sequence number is not consumed.
func (j *Journal) Append(ctx context.Context, r *tap.Record) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.insert == nil {
		return fmt.Errorf("%w: opened read-only", ErrJournal)
	}
	r.Seq = j.next
	blob, err := json.Marshal(r)
	if err != nil {
		r.Seq = 0
		return fmt.Errorf("%w: encode: %w", ErrJournal, err)
	}
	need := int64(len(blob)) + rowOverhead
	if j.bytes+need > j.o.MaxBytes {
		if err := j.makeRoom(ctx, need); err != nil {
			r.Seq = 0
			return err
		}
	}
	if err := j.write(ctx, r, blob); err != nil {
		r.Seq = 0
		// A commit that failed late (an fsync error, say) may still have
		// reached the disk: take the next number from the database, not
		// from memory, so the next append neither collides nor leaves a gap.
		j.resync(context.WithoutCancel(ctx))
		if isFull(err) {
			return fmt.Errorf("%w: %w", ErrJournalFull, err)
		}
		return fmt.Errorf("%w: append: %w", ErrJournal, err)
	}
	j.next++
	j.bytes += need
	j.total++
	j.unsent++
	if r.Decision == tap.Open {
		j.opened++
	}
	if j.oldest.IsZero() {
		j.oldest = r.Time.UTC()
	}
	return nil
}

func (j *Journal) write(ctx context.Context, r *tap.Record, blob []byte) error {
	tx, err := j.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit: no-op
	var token any
	if !r.Token.IsZero() {
		token = r.Token[:]
	}
	if _, err := tx.StmtContext(ctx, j.insert).ExecContext(ctx, int64(r.Seq), r.ID[:], r.Time.UnixNano(),
		string(r.Decision), token, r.Location.Group, blob); err != nil {
		return err
	}
	if j.onWrite != nil {
		j.onWrite()
	}
	return tx.Commit()
}

// isFull reports SQLITE_FULL (disk or file size limit).
func isFull(err error) bool {
	return err != nil && strings.Contains(err.Error(), "SQLITE_FULL")
}

// makeRoom prunes uploaded taps, oldest first, whatever their age, until
// need bytes fit; ErrJournalFull when unsent taps alone fill the journal.
func (j *Journal) makeRoom(ctx context.Context, need int64) error {
	if _, err := j.db.ExecContext(ctx, "DELETE FROM taps WHERE uploaded IS NOT NULL"); err != nil {
		return fmt.Errorf("%w: prune: %w", ErrJournal, err)
	}
	if err := j.refresh(ctx); err != nil {
		return err
	}
	if j.bytes+need > j.o.MaxBytes {
		return fmt.Errorf("%w: %d unsent taps fill %d bytes", ErrJournalFull, j.unsent, j.o.MaxBytes)
	}
	return nil
}

// Unsent returns up to limit taps not yet acknowledged, in sequence order,
// starting after sequence number after.
func (j *Journal) Unsent(ctx context.Context, after uint64, limit int) ([]tap.Record, error) {
	rows, err := j.db.QueryContext(ctx,
		"SELECT record FROM taps WHERE uploaded IS NULL AND seq > ? ORDER BY seq LIMIT ?", int64(after), limit)
	if err != nil {
		return nil, fmt.Errorf("%w: unsent: %w", ErrJournal, err)
	}
	defer rows.Close()
	var out []tap.Record
	for rows.Next() {
		var blob []byte
		if err := rows.Scan(&blob); err != nil {
			return nil, fmt.Errorf("%w: unsent: %w", ErrJournal, err)
		}
		var r tap.Record
		if err := json.Unmarshal(blob, &r); err != nil {
			return nil, fmt.Errorf("%w: record: %w", ErrJournal, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%w: unsent: %w", ErrJournal, err)
	}
	return out, nil
}

// MarkUploaded records the back office's acknowledgement of ids at time at.
// Ids the journal does not hold, or holds as uploaded already, are
// ignored; it returns how many taps it marked.
func (j *Journal) MarkUploaded(ctx context.Context, ids []uuid.UUID, at time.Time) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	tx, err := j.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("%w: mark: %w", ErrJournal, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit: no-op
	st, err := tx.PrepareContext(ctx, "UPDATE taps SET uploaded = ? WHERE id = ? AND uploaded IS NULL")
	if err != nil {
		return 0, fmt.Errorf("%w: mark: %w", ErrJournal, err)
	}
	defer st.Close()
	n := 0
	for _, id := range ids {
		res, err := st.ExecContext(ctx, at.UnixNano(), id[:])
		if err != nil {
			return 0, fmt.Errorf("%w: mark: %w", ErrJournal, err)
		}
		c, _ := res.RowsAffected()
		n += int(c)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("%w: mark: %w", ErrJournal, err)
	}
	j.unsent -= int64(n)
	var oldest sql.NullInt64
	if err := j.db.QueryRowContext(ctx, "SELECT time_ns FROM taps WHERE uploaded IS NULL ORDER BY seq LIMIT 1").Scan(&oldest); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return n, fmt.Errorf("%w: oldest: %w", ErrJournal, err)
	}
	j.oldest = time.Time{}
	if oldest.Valid {
		j.oldest = time.Unix(0, oldest.Int64).UTC()
	}
	return n, nil
}

// Prune removes taps uploaded more than Retention ago and returns how many.
func (j *Journal) Prune(ctx context.Context) (int, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	before := j.o.Now().Add(-j.o.Retention)
	res, err := j.db.ExecContext(ctx, "DELETE FROM taps WHERE uploaded IS NOT NULL AND uploaded < ?", before.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("%w: prune: %w", ErrJournal, err)
	}
	n, _ := res.RowsAffected()
	if n > 0 {
		if err := j.refresh(ctx); err != nil {
			return int(n), err
		}
	}
	return int(n), nil
}

// JournalStats is `faregate journal stats` (docs/cli.md).
type JournalStats struct {
	Taps         int64      `json:"taps"`
	Opened       int64      `json:"opened"`
	Unsent       int64      `json:"unsent"`
	OldestUnsent *time.Time `json:"oldest_unsent"`
}

// Stats counts the taps in the journal.
func (j *Journal) Stats() JournalStats {
	j.mu.Lock()
	defer j.mu.Unlock()
	s := JournalStats{Taps: j.total, Opened: j.opened, Unsent: j.unsent}
	if !j.oldest.IsZero() {
		t := j.oldest
		s.OldestUnsent = &t
	}
	return s
}

// Bytes is the journal's estimated size in bytes.
func (j *Journal) Bytes() int64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.bytes
}

// NextSeq is the sequence number the next tap will get.
func (j *Journal) NextSeq() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.next
}

// Each calls fn for every tap in sequence order (only unsent ones when
// unsent is true) until fn returns an error.
func (j *Journal) Each(ctx context.Context, unsent bool, fn func(r *tap.Record, uploaded bool) error) error {
	q := "SELECT record, uploaded IS NOT NULL FROM taps ORDER BY seq"
	if unsent {
		q = "SELECT record, 0 FROM taps WHERE uploaded IS NULL ORDER BY seq"
	}
	rows, err := j.db.QueryContext(ctx, q)
	if err != nil {
		return fmt.Errorf("%w: list: %w", ErrJournal, err)
	}
	defer rows.Close()
	for rows.Next() {
		var blob []byte
		var up bool
		if err := rows.Scan(&blob, &up); err != nil {
			return fmt.Errorf("%w: list: %w", ErrJournal, err)
		}
		var r tap.Record
		if err := json.Unmarshal(blob, &r); err != nil {
			return fmt.Errorf("%w: record: %w", ErrJournal, err)
		}
		if err := fn(&r, up); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%w: list: %w", ErrJournal, err)
	}
	return nil
}

// Entry is a journaled tap without its record: what a check of the
// journal needs.
type Entry struct {
	Seq      uint64
	ID       uuid.UUID
	Decision tap.Decision
	Uploaded bool
}

// Index calls fn for every tap in sequence order, without decoding the
// records, until fn returns an error.
func (j *Journal) Index(ctx context.Context, fn func(Entry) error) error {
	rows, err := j.db.QueryContext(ctx, "SELECT seq, id, decision, uploaded IS NOT NULL FROM taps ORDER BY seq")
	if err != nil {
		return fmt.Errorf("%w: index: %w", ErrJournal, err)
	}
	defer rows.Close()
	for rows.Next() {
		var e Entry
		var seq int64
		var id []byte
		if err := rows.Scan(&seq, &id, &e.Decision, &e.Uploaded); err != nil {
			return fmt.Errorf("%w: index: %w", ErrJournal, err)
		}
		if len(id) != len(e.ID) {
			return fmt.Errorf("%w: index: tap %d: id of %d bytes", ErrJournal, seq, len(id))
		}
		e.Seq = uint64(seq)
		copy(e.ID[:], id)
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%w: index: %w", ErrJournal, err)
	}
	return nil
}

// RecentOpens calls fn for every opened tap of group decided at or after
// since: what pass-back control needs after a restart.
func (j *Journal) RecentOpens(ctx context.Context, group string, since time.Time, fn func(rider.Token, time.Time)) error {
	rows, err := j.db.QueryContext(ctx,
		"SELECT token, time_ns FROM taps WHERE decision = 'open' AND time_ns >= ? AND grp = ? AND token IS NOT NULL",
		since.UnixNano(), group)
	if err != nil {
		return fmt.Errorf("%w: recent: %w", ErrJournal, err)
	}
	defer rows.Close()
	for rows.Next() {
		var tok []byte
		var ns int64
		if err := rows.Scan(&tok, &ns); err != nil {
			return fmt.Errorf("%w: recent: %w", ErrJournal, err)
		}
		var t rider.Token
		if len(tok) == len(t) {
			copy(t[:], tok)
			fn(t, time.Unix(0, ns))
		}
	}
	return rows.Err()
}

// Check runs SQLite's integrity check and verifies that no kept sequence
// number is at or above the next one to give. Uniqueness is the primary
// key's; gaplessness is checked by the crash test over Each.
func (j *Journal) Check(ctx context.Context) error {
	var check string
	if err := j.db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&check); err != nil {
		return fmt.Errorf("%w: check: %w", ErrJournal, err)
	}
	if check != "ok" {
		return fmt.Errorf("%w: damaged database: %s", ErrJournal, clipString(check, 200))
	}
	var hi sql.NullInt64
	if err := j.db.QueryRowContext(ctx, "SELECT max(seq) FROM taps").Scan(&hi); err != nil {
		return fmt.Errorf("%w: check: %w", ErrJournal, err)
	}
	if hi.Valid && uint64(hi.Int64) >= j.NextSeq() {
		return fmt.Errorf("%w: sequence %d at or above the next %d", ErrJournal, hi.Int64, j.NextSeq())
	}
	return nil
}

func clipString(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// RecentQR calls fn with the payload of every opened QR tap decided at or
// after since: what a restarted gate's QR replay memory needs
// (qr.Gate.Restore).
func (j *Journal) RecentQR(ctx context.Context, since time.Time, fn func(payload []byte)) error {
	rows, err := j.db.QueryContext(ctx,
		"SELECT record FROM taps WHERE decision = 'open' AND time_ns >= ? ORDER BY seq", since.UnixNano())
	if err != nil {
		return fmt.Errorf("%w: recent qr: %w", ErrJournal, err)
	}
	defer rows.Close()
	for rows.Next() {
		var blob []byte
		if err := rows.Scan(&blob); err != nil {
			return fmt.Errorf("%w: recent qr: %w", ErrJournal, err)
		}
		var r struct {
			Kind tap.Kind `json:"kind"`
			QR   []byte   `json:"qr"`
		}
		if err := json.Unmarshal(blob, &r); err != nil {
			return fmt.Errorf("%w: recent qr: %w", ErrJournal, err)
		}
		if r.Kind == tap.KindQR && len(r.QR) > 0 {
			fn(r.QR)
		}
	}
	return rows.Err()
}
