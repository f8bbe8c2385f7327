package backend

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Schema migrations, one set per engine, applied at open (goose).
//
//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrations embed.FS

// SQLiteStore is the embedded store: one SQLite file, durable (WAL,
// synchronous=FULL: a tap acknowledged to a gate survives a power cut).
type SQLiteStore struct{ sqlStore }

// PostgresStore is the store on PostgreSQL.
type PostgresStore struct{ sqlStore }

var (
	_ Store = (*SQLiteStore)(nil)
	_ Store = (*PostgresStore)(nil)
)

// OpenSQLite opens (creating it) the database back office.db in dir and
// migrates its schema.
func OpenSQLite(ctx context.Context, dir string) (*SQLiteStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("backend: data directory: %w", err)
	}
	q := url.Values{}
	// wal_autocheckpoint: the commit that takes the write-ahead log past
	// 8 192 pages (32 MiB) copies it into the database file, and the next
	// transaction starts the log again. SQLite's default, 1 000 pages, had
	// ingest's single writer checkpoint several times a second, copying
	// the same index pages over and over: 18 000 → 25 000 taps/s.
	for _, p := range []string{"busy_timeout(30000)", "journal_mode(WAL)", "synchronous(FULL)", "temp_store(MEMORY)", "cache_size(-65536)", "wal_autocheckpoint(8192)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "backoffice.db")+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("backend: open sqlite: %w", err)
	}
	db.SetMaxOpenConns(8)
	if err := migrate(ctx, db, goose.DialectSQLite3, "migrations/sqlite"); err != nil {
		db.Close()
		return nil, err
	}
	return &SQLiteStore{sqlStore{db: db, d: dialect{
		name: "sqlite", rowAtATime: true, blob: "BLOB", greatest: "MAX", maxParams: 32766,
		isConflict: func(err error) bool {
			var se *sqlite.Error
			return errors.As(err, &se) && (se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE)
		},
	}}}, nil
}

// OpenPostgres connects to the PostgreSQL database at url
// (postgres://user@host:port/db?sslmode=…) and migrates its schema.
func OpenPostgres(ctx context.Context, dsn string) (*PostgresStore, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("backend: open postgres: %w", err)
	}
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(16)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("backend: open postgres: %w", redactDSN(err, dsn))
	}
	if err := migrate(ctx, db, goose.DialectPostgres, "migrations/postgres"); err != nil {
		db.Close()
		return nil, err
	}
	return &PostgresStore{sqlStore{db: db, d: dialect{
		name: "postgres", dollar: true, blob: "BYTEA", greatest: "GREATEST", maxParams: 65535,
		isConflict: func(err error) bool {
			var pe *pgconn.PgError
			return errors.As(err, &pe) && pe.Code == "23505"
		},
	}}}, nil
}

// Open opens the store a --db or --data flag names: a postgres:// or
// postgresql:// URL, or else a directory for SQLite.
func Open(ctx context.Context, db, dataDir string) (Store, error) {
	if db != "" {
		if !strings.HasPrefix(db, "postgres://") && !strings.HasPrefix(db, "postgresql://") {
			return nil, fmt.Errorf("backend: --db wants a postgres:// URL")
		}
		return OpenPostgres(ctx, db)
	}
	if dataDir == "" {
		return nil, fmt.Errorf("backend: no store: give --data DIR or --db postgres://…")
	}
	return OpenSQLite(ctx, dataDir)
}

func migrate(ctx context.Context, db *sql.DB, d goose.Dialect, dir string) error {
	sub, err := fs.Sub(migrations, dir)
	if err != nil {
		return fmt.Errorf("backend: migrations: %w", err)
	}
	p, err := goose.NewProvider(d, db, sub, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("backend: migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("backend: migrate: %w", err)
	}
	return nil
}

// redactDSN keeps a password in the URL out of an error message.
func redactDSN(err error, dsn string) error {
	u, perr := url.Parse(dsn)
	if perr != nil || u.User == nil {
		return err
	}
	if pw, ok := u.User.Password(); ok && pw != "" && strings.Contains(err.Error(), pw) {
		return errors.New(strings.ReplaceAll(err.Error(), pw, "****"))
	}
	return err
}
