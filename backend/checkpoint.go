package backend

import (
	"context"
	"database/sql"
	"sync"
	"time"
)

// checkpointer copies the SQLite write-ahead log into the database file
// from a connection of its own, so the ingest writer's commits never run
// a checkpoint themselves (SQLite's automatic checkpoint, turned off by
// wal_autocheckpoint(0), ran inside the commit that crossed 1000 pages:
// ≈ 12 % of the writer's time, with an fsync of the database file). A
// PASSIVE checkpoint neither waits for nor blocks the writer or readers.
type checkpointer struct {
	stop chan struct{}
	done sync.WaitGroup
	once sync.Once
}

// checkpointEvery is how often the log is checkpointed: often enough to
// keep it to a few MB at full ingest speed.
const checkpointEvery = 200 * time.Millisecond

func startCheckpointer(db *sql.DB) *checkpointer {
	c := &checkpointer{stop: make(chan struct{})}
	c.done.Go(func() {
		t := time.NewTicker(checkpointEvery)
		defer t.Stop()
		for {
			select {
			case <-c.stop:
				return
			case <-t.C:
				// An error (a busy database) is retried at the next tick;
				// the log only grows meanwhile, nothing is lost.
				_, _ = db.ExecContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)")
			}
		}
	})
	return c
}

// close stops the checkpointer and checkpoints what is left, truncating
// the log, before the database closes.
func (c *checkpointer) close(db *sql.DB) {
	c.once.Do(func() {
		close(c.stop)
		c.done.Wait()
		_, _ = db.ExecContext(context.Background(), "PRAGMA wal_checkpoint(TRUNCATE)")
	})
}
