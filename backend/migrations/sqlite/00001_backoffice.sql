-- The back office's tables on SQLite (docs/backend.md). Times are Unix
-- milliseconds; tokens are the 16 bytes of a rider.Token; money is minor
-- units of the rules' currency. No column holds a PAN: card data lives only
-- in vault.sealed, sealed to the vault key.

-- +goose Up
CREATE TABLE gates (
    id               TEXT PRIMARY KEY,
    pubkey           BLOB NOT NULL,
    disabled         INTEGER NOT NULL DEFAULT 0,
    added_ms         INTEGER NOT NULL,
    last_seen_ms     INTEGER NOT NULL DEFAULT 0,
    last_seq         INTEGER NOT NULL DEFAULT 0,
    backlog          INTEGER NOT NULL DEFAULT 0,
    oldest_unsent_ms INTEGER NOT NULL DEFAULT 0,
    denylist_version INTEGER NOT NULL DEFAULT 0,
    taps             INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE taps (
    id          BLOB PRIMARY KEY,
    gate        TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    time_ms     INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    token       BLOB,
    shard       INTEGER NOT NULL,
    leg         INTEGER NOT NULL,
    mode        TEXT NOT NULL,
    category    TEXT NOT NULL,
    zones       TEXT NOT NULL,
    record      BLOB NOT NULL
) WITHOUT ROWID;
-- Settlement reads only these two indexes (they cover its queries): which
-- tokens have legs received in a run's window, then each token's legs.
CREATE INDEX taps_token ON taps (token, time_ms, leg, received_ms, mode, category, zones) WHERE token IS NOT NULL;
CREATE INDEX taps_received ON taps (received_ms, leg, time_ms, shard, token);

CREATE TABLE vault (
    token   BLOB PRIMARY KEY,
    gate    TEXT NOT NULL,
    tap_id  BLOB NOT NULL,
    time_ms INTEGER NOT NULL,
    sealed  BLOB NOT NULL
) WITHOUT ROWID;

CREATE TABLE runs (
    day        INTEGER PRIMARY KEY,
    cutoff_ms  INTEGER NOT NULL,
    started_ms INTEGER NOT NULL
);

CREATE TABLE run_shards (
    day         INTEGER NOT NULL,
    shard       INTEGER NOT NULL,
    shards      INTEGER NOT NULL,
    finished_ms INTEGER NOT NULL,
    PRIMARY KEY (day, shard, shards)
);

CREATE TABLE charges (
    id          INTEGER PRIMARY KEY,
    token       BLOB NOT NULL,
    run_day     INTEGER NOT NULL,
    amount      INTEGER NOT NULL,
    day_amount  INTEGER NOT NULL,
    adjustment  INTEGER NOT NULL,
    taps        INTEGER NOT NULL,
    currency    TEXT NOT NULL,
    status      TEXT NOT NULL,
    outcome     TEXT NOT NULL DEFAULT '',
    reference   TEXT NOT NULL DEFAULT '',
    outcome_ms  INTEGER NOT NULL DEFAULT 0,
    created_ms  INTEGER NOT NULL,
    UNIQUE (token, run_day)
);
CREATE INDEX charges_run ON charges (run_day);
CREATE INDEX charges_pending ON charges (status, id) WHERE status = 'pending';

-- +goose Down
DROP TABLE charges;
DROP TABLE run_shards;
DROP TABLE runs;
DROP TABLE vault;
DROP TABLE taps;
DROP TABLE gates;
