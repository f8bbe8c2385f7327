-- Offline QR credentials at the back office (docs/qr.md, docs/backend.md):
-- the device keys it issued, the counters uploaded taps used (replay across
-- every gate), and the outcome of verifying each uploaded QR tap. Times are
-- Unix milliseconds; device keys are the 32 bytes of an Ed25519 public key.

-- +goose Up
CREATE TABLE qr_credentials (
    device        BLOB PRIMARY KEY,
    token         BLOB NOT NULL,
    key_id        INTEGER NOT NULL,
    category      INTEGER NOT NULL,
    not_before_ms INTEGER NOT NULL,
    not_after_ms  INTEGER NOT NULL,
    issued_ms     INTEGER NOT NULL,
    revoked_ms    INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX qr_credentials_token ON qr_credentials (token);

-- One row per (device, counter): the first tap to use it keeps it.
CREATE TABLE qr_counters (
    device  BLOB NOT NULL,
    counter INTEGER NOT NULL,
    tap_id  TEXT NOT NULL,
    PRIMARY KEY (device, counter)
) WITHOUT ROWID;

-- The back office's verdict on an uploaded provisional QR tap (taps.id):
-- confirmed (then the tap is a leg, priced in the credential's category)
-- or refused with a qr.Reason (never settled).
CREATE TABLE qr_outcomes (
    tap_id     BLOB PRIMARY KEY,
    outcome    TEXT NOT NULL,
    reason     TEXT NOT NULL DEFAULT '',
    detail     TEXT NOT NULL DEFAULT '',
    category   TEXT NOT NULL DEFAULT '',
    checked_ms INTEGER NOT NULL
) WITHOUT ROWID;

-- +goose Down
DROP TABLE qr_outcomes;
DROP TABLE qr_counters;
DROP TABLE qr_credentials;
