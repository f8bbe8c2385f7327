package backend

import (
	"context"
	"database/sql"
	"encoding/json"
	"io/fs"
	"path/filepath"
	"testing"

	"github.com/faregate/faregate/tap"
	"github.com/pressly/goose/v3"
	"github.com/stretchr/testify/require"
)

// TestMigrateJourneys: taps stored before migration 4 (no role or stop
// columns, tap-offs not legs) come out of it as settlement now reads them:
// role and stop from the stored record, an opened tap-off a leg, a refused
// one not.
func TestMigrateJourneys(t *testing.T) {
	type engine struct {
		open   func(t *testing.T) (db *sql.DB, reopen func() Store)
		d      goose.Dialect
		dir    string
		dollar bool
	}
	engines := map[string]engine{
		"sqlite": {d: goose.DialectSQLite3, dir: "migrations/sqlite", open: func(t *testing.T) (*sql.DB, func() Store) {
			dir := t.TempDir()
			db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "backoffice.db"))
			require.NoError(t, err)
			return db, func() Store {
				s, err := OpenSQLite(context.Background(), dir)
				require.NoError(t, err)
				return s
			}
		}},
		"postgres": {d: goose.DialectPostgres, dir: "migrations/postgres", dollar: true, open: func(t *testing.T) (*sql.DB, func() Store) {
			dsn := testPostgresDB(t)
			db, err := sql.Open("pgx", dsn)
			require.NoError(t, err)
			return db, func() Store {
				s, err := OpenPostgres(context.Background(), dsn)
				require.NoError(t, err)
				return s
			}
		}},
	}
	for name, e := range engines {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			db, reopen := e.open(t)
			sub, err := fs.Sub(migrations, e.dir)
			require.NoError(t, err)
			p, err := goose.NewProvider(e.d, db, sub, goose.WithDisableGlobalRegistry(true))
			require.NoError(t, err)
			_, err = p.UpTo(ctx, 3)
			require.NoError(t, err)

			on := testRecord(t, "G-1", 1, testToken(1), st0)
			off := testRecord(t, "G-2", 1, testToken(1), st0.Add(20*60e9))
			off.Location.Role, off.Location.Stop = tap.RoleExit, "Bank"
			refused := testRecord(t, "G-2", 2, testToken(2), st0.Add(30*60e9))
			refused.Location.Role, refused.Decision = tap.RoleExit, tap.Reject
			ins := (&sqlStore{d: dialect{dollar: e.dollar}}).q(`INSERT INTO taps (id, gate, seq, time_ms, received_ms, token, shard, leg, mode, category, zones, record)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, '', '', ?)`)
			for i, r := range []tap.Record{on, off, refused} {
				rec, err := json.Marshal(r)
				require.NoError(t, err)
				_, err = db.ExecContext(ctx, ins, r.ID[:], r.Gate, int64(r.Seq), r.Time.UnixMilli(), r.Time.UnixMilli(), r.Token[:], shardKey(r.Token),
					max(1-i, 0), r.Location.Mode, rec)
				require.NoError(t, err)
			}
			require.NoError(t, db.Close())

			s := reopen()
			defer s.Close()
			type row struct {
				Role, Stop string
				Leg        int
			}
			got := map[string]row{}
			for _, r := range []tap.Record{on, off, refused} {
				var x row
				require.NoError(t, sqlOf(s).db.QueryRowContext(ctx, sqlOf(s).q(`SELECT role, stop, leg FROM taps WHERE id = ?`), r.ID[:]).Scan(&x.Role, &x.Stop, &x.Leg))
				got[r.Gate+"/"+string(r.Decision)] = x
			}
			require.Equal(t, map[string]row{
				"G-1/open":   {"on", "Central", 1},
				"G-2/open":   {"off", "Bank", 1},
				"G-2/reject": {"off", "Central", 0},
			}, got)
		})
	}
}
