package denylistreg

import (
	"context"
	"database/sql"
	_ "embed"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/faregate/faregate/capping"
	"github.com/faregate/faregate/denylist"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	_ "modernc.org/sqlite"             // database/sql driver "sqlite"
)

// Store persists the deny-list registry. SQLiteStore is the
// embedded implementation; a PostgreSQL one implements the same methods on
// the same tables (denylist.sql). Only the registry writes, one batch at a
// time.
type Store interface {
	// Head returns the newest version; ok is false before the
	// first one.
	Head(ctx context.Context) (head Version, ok bool, err error)
	// Fingerprints calls fn with the fingerprint of every listed
	// token, in no particular order.
	Fingerprints(ctx context.Context, fn func(fp uint64)) error
	// Entries returns the entries of those tokens that are listed.
	Entries(ctx context.Context, tokens []denylist.Token) (map[denylist.Token]Entry, error)
	// ListEntries returns up to limit listed entries, newest listing first.
	ListEntries(ctx context.Context, limit int) ([]Entry, error)
	// Debt returns how many entries there are and what they owe, by
	// currency.
	Debt(ctx context.Context) (entries int, owed map[string]int64, err error)
	// Version returns a published version; ok is false when it was never
	// published.
	Version(ctx context.Context, v uint64) (ver Version, ok bool, err error)
	// FingerprintCounts returns how many listed tokens have each
	// fingerprint (absent: none).
	FingerprintCounts(ctx context.Context, fps []uint64) (map[uint64]int, error)
	// Commit records one new version atomically.
	Commit(ctx context.Context, c *Commit) error
	// Changes returns the fingerprint changes of versions in
	// (after, upto], ordered by version.
	Changes(ctx context.Context, after, upto uint64) ([]FingerprintChange, error)
	// Prune drops the changes of versions created before t, keeping
	// the newest version's, and returns the oldest version a delta can
	// still start from.
	Prune(ctx context.Context, t time.Time) (deltasFrom uint64, err error)
}

// Version describes one published version.
type Version struct {
	Version     uint64
	Created     time.Time
	Entries     int    // fingerprints in the version
	SnapshotSig []byte // signature of its snapshot
	DeltasFrom  uint64 // oldest version a delta to it can start from
}

// Entry is a listed token and what the back office knows about it.
// The gate only ever sees the token's fingerprint.
type Entry struct {
	Token      denylist.Token
	Reason     string         // ReasonLateDecline, ReasonOperator, ReasonImport …
	Actor      string         // who listed it: a settlement run, an operator …
	Owed       capping.Amount // debt owed, in the currency's minor units
	Currency   string         // ISO 4217 alphabetic code
	DeclinedAt time.Time
	ListedAt   time.Time
	Version    uint64 // the version that listed it
}

// FingerprintChange is one fingerprint added to or removed from the
// gate-side set by a version.
type FingerprintChange struct {
	Version     uint64
	Fingerprint uint64
	Added       bool
}

// Removal records why a token left the list.
type Removal struct {
	Token  denylist.Token
	Reason string // ReasonDebtRecovered, ReasonOperator …
	Actor  string
}

// Commit is everything one new version writes.
type Commit struct {
	Version Version
	Adds    []Entry
	Removes []Removal
	Changes []FingerprintChange // of Version
	At      time.Time
}

//go:embed schema.sql
var schema string

//go:embed schema_postgres.sql
var schemaPostgres string

// sqlStore is the Store in standard SQL; SQLiteStore and PostgresStore set
// the dialect (placeholders).
type sqlStore struct {
	db     *sql.DB
	owned  bool
	dollar bool // PostgreSQL: $1, $2 … instead of ?
}

// SQLiteStore is the Store on SQLite (modernc.org/sqlite,
// pure Go).
type SQLiteStore struct{ sqlStore }

// PostgresStore is the Store on PostgreSQL (pgx), the same tables as on
// SQLite (schema_postgres.sql).
type PostgresStore struct{ sqlStore }

var (
	_ Store = (*SQLiteStore)(nil)
	_ Store = (*PostgresStore)(nil)
)

// q rewrites ? placeholders for the dialect.
func (s *sqlStore) q(query string) string {
	if !s.dollar {
		return query
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

// OpenPostgres connects to the PostgreSQL database at dsn and applies the
// schema.
func OpenPostgres(ctx context.Context, dsn string) (*PostgresStore, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("denylistreg: store: %w", err)
	}
	if _, err := db.ExecContext(ctx, schemaPostgres); err != nil {
		db.Close()
		return nil, fmt.Errorf("denylistreg: store: schema: %w", err)
	}
	return &PostgresStore{sqlStore{db: db, owned: true, dollar: true}}, nil
}

// OpenSQLite opens (creating it if needed) the SQLite database at
// path, durable (WAL, synchronous=FULL), and applies the schema.
func OpenSQLite(ctx context.Context, path string) (*SQLiteStore, error) {
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(FULL)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("denylistreg: store: %w", err)
	}
	s, err := NewSQLiteStore(ctx, db)
	if err != nil {
		db.Close()
		return nil, err
	}
	s.owned = true
	return s, nil
}

// NewSQLiteStore uses an open SQLite database (shared with other
// tables, say) and applies the schema.
func NewSQLiteStore(ctx context.Context, db *sql.DB) (*SQLiteStore, error) {
	if _, err := db.ExecContext(ctx, schema); err != nil {
		return nil, fmt.Errorf("denylistreg: store: schema: %w", err)
	}
	return &SQLiteStore{sqlStore{db: db}}, nil
}

// Close closes the database if OpenSQLite opened it.
func (s *sqlStore) Close() error {
	if s.owned {
		return s.db.Close()
	}
	return nil
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

// Head implements Store.
func (s *sqlStore) Head(ctx context.Context) (Version, bool, error) {
	var v Version
	var created, entries int64
	var from sql.NullInt64
	err := s.db.QueryRowContext(ctx, `
		SELECT version, created, entries, snapshot_sig,
		       (SELECT value FROM denylist_meta WHERE key = 'deltas_from')
		FROM denylist_versions ORDER BY version DESC LIMIT 1`).
		Scan(&v.Version, &created, &entries, &v.SnapshotSig, &from)
	if errors.Is(err, sql.ErrNoRows) {
		return Version{}, false, nil
	}
	if err != nil {
		return Version{}, false, fmt.Errorf("denylistreg: store: head: %w", err)
	}
	v.Created, v.Entries = fromMS(created), int(entries)
	v.DeltasFrom = uint64(from.Int64)
	return v, true, nil
}

// Fingerprints implements Store.
func (s *sqlStore) Fingerprints(ctx context.Context, fn func(uint64)) error {
	rows, err := s.db.QueryContext(ctx, `SELECT fingerprint FROM denylist_entries`)
	if err != nil {
		return fmt.Errorf("denylistreg: store: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var fp int64
		if err := rows.Scan(&fp); err != nil {
			return fmt.Errorf("denylistreg: store: %w", err)
		}
		fn(uint64(fp))
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("denylistreg: store: %w", err)
	}
	return nil
}

// inChunk bounds the parameters of one IN (…) query.
const inChunk = 500

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

// Entries implements Store.
func (s *sqlStore) Entries(ctx context.Context, tokens []denylist.Token) (map[denylist.Token]Entry, error) {
	out := make(map[denylist.Token]Entry)
	for len(tokens) > 0 {
		chunk := tokens[:min(len(tokens), inChunk)]
		tokens = tokens[len(chunk):]
		args := make([]any, len(chunk))
		for i, t := range chunk {
			args[i] = t[:]
		}
		rows, err := s.db.QueryContext(ctx, s.q(`
			SELECT token, reason, actor, amount_minor, currency, declined_at, listed_at, version
			FROM denylist_entries WHERE token IN (`+placeholders(len(chunk))+`)`), args...)
		if err != nil {
			return nil, fmt.Errorf("denylistreg: store: %w", err)
		}
		for rows.Next() {
			var e Entry
			var tok []byte
			var declined sql.NullInt64
			var listed int64
			if err := rows.Scan(&tok, &e.Reason, &e.Actor, &e.Owed, &e.Currency, &declined, &listed, &e.Version); err != nil {
				rows.Close()
				return nil, fmt.Errorf("denylistreg: store: %w", err)
			}
			copy(e.Token[:], tok)
			if declined.Valid {
				e.DeclinedAt = fromMS(declined.Int64)
			}
			e.ListedAt = fromMS(listed)
			out[e.Token] = e
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("denylistreg: store: %w", err)
		}
	}
	return out, nil
}

// ListEntries implements Store.
func (s *sqlStore) ListEntries(ctx context.Context, limit int) ([]Entry, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`
		SELECT token, reason, actor, amount_minor, currency, declined_at, listed_at, version
		FROM denylist_entries ORDER BY listed_at DESC, token LIMIT ?`), limit)
	if err != nil {
		return nil, fmt.Errorf("denylistreg: store: %w", err)
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		var e Entry
		var tok []byte
		var declined sql.NullInt64
		var listed int64
		if err := rows.Scan(&tok, &e.Reason, &e.Actor, &e.Owed, &e.Currency, &declined, &listed, &e.Version); err != nil {
			return nil, fmt.Errorf("denylistreg: store: %w", err)
		}
		copy(e.Token[:], tok)
		if declined.Valid {
			e.DeclinedAt = fromMS(declined.Int64)
		}
		e.ListedAt = fromMS(listed)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("denylistreg: store: %w", err)
	}
	return out, nil
}

// Debt implements Store.
func (s *sqlStore) Debt(ctx context.Context) (int, map[string]int64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT currency, COUNT(*), COALESCE(SUM(amount_minor), 0) FROM denylist_entries GROUP BY currency`)
	if err != nil {
		return 0, nil, fmt.Errorf("denylistreg: store: %w", err)
	}
	defer rows.Close()
	n, owed := 0, map[string]int64{}
	for rows.Next() {
		var cur string
		var c, sum int64
		if err := rows.Scan(&cur, &c, &sum); err != nil {
			return 0, nil, fmt.Errorf("denylistreg: store: %w", err)
		}
		n += int(c)
		if sum != 0 || cur != "" {
			owed[cur] += sum
		}
	}
	if err := rows.Err(); err != nil {
		return 0, nil, fmt.Errorf("denylistreg: store: %w", err)
	}
	return n, owed, nil
}

// Version implements Store.
func (s *sqlStore) Version(ctx context.Context, version uint64) (Version, bool, error) {
	var v Version
	var created, entries int64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT version, created, entries, snapshot_sig FROM denylist_versions WHERE version = ?`), int64(version)).
		Scan(&v.Version, &created, &entries, &v.SnapshotSig)
	if errors.Is(err, sql.ErrNoRows) {
		return Version{}, false, nil
	}
	if err != nil {
		return Version{}, false, fmt.Errorf("denylistreg: store: version: %w", err)
	}
	v.Created, v.Entries = fromMS(created), int(entries)
	return v, true, nil
}

// FingerprintCounts implements Store.
func (s *sqlStore) FingerprintCounts(ctx context.Context, fps []uint64) (map[uint64]int, error) {
	out := make(map[uint64]int)
	for len(fps) > 0 {
		chunk := fps[:min(len(fps), inChunk)]
		fps = fps[len(chunk):]
		args := make([]any, len(chunk))
		for i, fp := range chunk {
			args[i] = int64(fp)
		}
		rows, err := s.db.QueryContext(ctx, s.q(`
			SELECT fingerprint, count(*) FROM denylist_entries
			WHERE fingerprint IN (`+placeholders(len(chunk))+`) GROUP BY fingerprint`), args...)
		if err != nil {
			return nil, fmt.Errorf("denylistreg: store: %w", err)
		}
		for rows.Next() {
			var fp int64
			var n int
			if err := rows.Scan(&fp, &n); err != nil {
				rows.Close()
				return nil, fmt.Errorf("denylistreg: store: %w", err)
			}
			out[uint64(fp)] = n
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("denylistreg: store: %w", err)
		}
	}
	return out, nil
}

// Commit implements Store.
func (s *sqlStore) Commit(ctx context.Context, c *Commit) (err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("denylistreg: store: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
			err = fmt.Errorf("denylistreg: store: commit version %d: %w", c.Version.Version, err)
		}
	}()
	if err := s.insertVersion(ctx, tx, c); err != nil {
		return err
	}
	event, err := tx.PrepareContext(ctx, s.q(`
		INSERT INTO denylist_events (at, version, token, action, reason, actor, amount_minor, currency)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`))
	if err != nil {
		return err
	}
	defer event.Close()
	for _, step := range []func(context.Context, *sql.Tx, *sql.Stmt, *Commit) error{s.removeEntries, s.addEntries, s.insertChanges} {
		if err := step(ctx, tx, event, c); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO denylist_meta (key, value) VALUES ('deltas_from', ?) ON CONFLICT (key) DO NOTHING`), int64(c.Version.Version)); err != nil {
		return err
	}
	return tx.Commit()
}

func (s *sqlStore) insertVersion(ctx context.Context, tx *sql.Tx, c *Commit) error {
	v := &c.Version
	var adds, removes int
	for _, ch := range c.Changes {
		if ch.Added {
			adds++
		} else {
			removes++
		}
	}
	_, err := tx.ExecContext(ctx, s.q(`
		INSERT INTO denylist_versions (version, created, entries, snapshot_sig, adds, removes)
		VALUES (?, ?, ?, ?, ?, ?)`), int64(v.Version), ms(v.Created), v.Entries, v.SnapshotSig, adds, removes)
	return err
}

// removeEntries deletes the removed tokens' entries, each with its event.
func (s *sqlStore) removeEntries(ctx context.Context, tx *sql.Tx, event *sql.Stmt, c *Commit) error {
	if len(c.Removes) == 0 {
		return nil
	}
	del, err := tx.PrepareContext(ctx, s.q(`DELETE FROM denylist_entries WHERE token = ? RETURNING amount_minor, currency`))
	if err != nil {
		return err
	}
	defer del.Close()
	at := ms(c.At)
	for _, r := range c.Removes {
		var amount int64
		var currency string
		if err := del.QueryRowContext(ctx, r.Token[:]).Scan(&amount, &currency); err != nil {
			return fmt.Errorf("remove a token: %w", err)
		}
		if _, err := event.ExecContext(ctx, at, int64(c.Version.Version), r.Token[:], "remove", r.Reason, r.Actor, amount, currency); err != nil {
			return err
		}
	}
	return nil
}

// addEntries inserts the listed tokens' entries, each with its event.
func (s *sqlStore) addEntries(ctx context.Context, tx *sql.Tx, event *sql.Stmt, c *Commit) error {
	if len(c.Adds) == 0 {
		return nil
	}
	ins, err := tx.PrepareContext(ctx, s.q(`
		INSERT INTO denylist_entries (token, fingerprint, reason, actor, amount_minor, currency, declined_at, listed_at, version)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`))
	if err != nil {
		return err
	}
	defer ins.Close()
	at := ms(c.At)
	for _, e := range c.Adds {
		var declined sql.NullInt64
		if !e.DeclinedAt.IsZero() {
			declined = sql.NullInt64{Int64: ms(e.DeclinedAt), Valid: true}
		}
		if _, err := ins.ExecContext(ctx, e.Token[:], int64(denylist.Fingerprint(e.Token)), e.Reason, e.Actor,
			e.Owed, e.Currency, declined, ms(e.ListedAt), int64(c.Version.Version)); err != nil {
			return fmt.Errorf("list a token: %w", err)
		}
		if _, err := event.ExecContext(ctx, at, int64(c.Version.Version), e.Token[:], "add", e.Reason, e.Actor, e.Owed, e.Currency); err != nil {
			return err
		}
	}
	return nil
}

// insertChanges records the fingerprint changes deltas are built from.
func (s *sqlStore) insertChanges(ctx context.Context, tx *sql.Tx, _ *sql.Stmt, c *Commit) error {
	if len(c.Changes) == 0 {
		return nil
	}
	ch, err := tx.PrepareContext(ctx, s.q(`INSERT INTO denylist_changes (version, fingerprint, added) VALUES (?, ?, ?)`))
	if err != nil {
		return err
	}
	defer ch.Close()
	for _, c := range c.Changes {
		added := 0
		if c.Added {
			added = 1
		}
		if _, err := ch.ExecContext(ctx, int64(c.Version), int64(c.Fingerprint), added); err != nil {
			return err
		}
	}
	return nil
}

// Changes implements Store.
func (s *sqlStore) Changes(ctx context.Context, after, upto uint64) ([]FingerprintChange, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`
		SELECT version, fingerprint, added FROM denylist_changes
		WHERE version > ? AND version <= ? ORDER BY version`), int64(after), int64(upto))
	if err != nil {
		return nil, fmt.Errorf("denylistreg: store: %w", err)
	}
	defer rows.Close()
	var out []FingerprintChange
	for rows.Next() {
		var c FingerprintChange
		var fp, added int64
		if err := rows.Scan(&c.Version, &fp, &added); err != nil {
			return nil, fmt.Errorf("denylistreg: store: %w", err)
		}
		c.Fingerprint, c.Added = uint64(fp), added != 0
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("denylistreg: store: %w", err)
	}
	return out, nil
}

// Prune implements Store.
func (s *sqlStore) Prune(ctx context.Context, t time.Time) (deltasFrom uint64, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("denylistreg: store: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
			err = fmt.Errorf("denylistreg: store: prune: %w", err)
		}
	}()
	// The newest version created before t becomes the oldest delta base;
	// the newest version overall always stays a base.
	var cut sql.NullInt64
	if err := tx.QueryRowContext(ctx, s.q(`
		SELECT max(version) FROM denylist_versions
		WHERE created < ? AND version < (SELECT max(version) FROM denylist_versions)`), ms(t)).Scan(&cut); err != nil {
		return 0, err
	}
	var from int64
	if err := tx.QueryRowContext(ctx, `SELECT coalesce((SELECT value FROM denylist_meta WHERE key = 'deltas_from'), 0)`).Scan(&from); err != nil {
		return 0, err
	}
	if cut.Valid && cut.Int64 > from {
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM denylist_changes WHERE version <= ?`), cut.Int64); err != nil {
			return 0, err
		}
		if _, err := tx.ExecContext(ctx, s.q(`
			INSERT INTO denylist_meta (key, value) VALUES ('deltas_from', ?)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value`), cut.Int64); err != nil {
			return 0, err
		}
		from = cut.Int64
	}
	return uint64(from), tx.Commit()
}
