-- Deny-list registry (docs/denylist.md). Rider tokens only: never a PAN.
-- Times are Unix milliseconds; fingerprints are denylist.Token.Fingerprint
-- stored as signed 64-bit integers (same bits).

-- The tokens listed now, with what the back office knows about each.
CREATE TABLE IF NOT EXISTS denylist_entries (
    token        BLOB    PRIMARY KEY CHECK (length(token) = 16),
    fingerprint  INTEGER NOT NULL,
    reason       TEXT    NOT NULL,            -- late_decline, operator, import …
    actor        TEXT    NOT NULL DEFAULT '', -- settlement run, operator name …
    amount_minor INTEGER NOT NULL DEFAULT 0,  -- debt owed, in minor units
    currency     TEXT    NOT NULL DEFAULT '', -- ISO 4217 alphabetic code
    declined_at  INTEGER,                     -- the declined charge, if any
    listed_at    INTEGER NOT NULL,
    version      INTEGER NOT NULL             -- version that listed it
);
CREATE INDEX IF NOT EXISTS denylist_entries_fingerprint ON denylist_entries (fingerprint);

-- Every published version: what a delta to it must carry.
CREATE TABLE IF NOT EXISTS denylist_versions (
    version      INTEGER PRIMARY KEY,
    created      INTEGER NOT NULL,
    entries      INTEGER NOT NULL,  -- fingerprints in the version
    snapshot_sig BLOB    NOT NULL CHECK (length(snapshot_sig) = 64),
    adds         INTEGER NOT NULL,  -- fingerprints added by this version
    removes      INTEGER NOT NULL
);

-- Fingerprint-level changes of each version: deltas are built from them.
-- Pruned after the retention period (denylist_meta.deltas_from).
CREATE TABLE IF NOT EXISTS denylist_changes (
    version     INTEGER NOT NULL,
    fingerprint INTEGER NOT NULL,
    added       INTEGER NOT NULL CHECK (added IN (0, 1)),
    PRIMARY KEY (version, fingerprint)
) WITHOUT ROWID;

-- Audit trail of every token listed or removed; never pruned.
CREATE TABLE IF NOT EXISTS denylist_events (
    id           INTEGER PRIMARY KEY,
    at           INTEGER NOT NULL,
    version      INTEGER NOT NULL,
    token        BLOB    NOT NULL CHECK (length(token) = 16),
    action       TEXT    NOT NULL CHECK (action IN ('add', 'remove')),
    reason       TEXT    NOT NULL,
    actor        TEXT    NOT NULL DEFAULT '',
    amount_minor INTEGER NOT NULL DEFAULT 0,
    currency     TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS denylist_events_token ON denylist_events (token);

-- deltas_from: the oldest version a delta can start from.
CREATE TABLE IF NOT EXISTS denylist_meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
