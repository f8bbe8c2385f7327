-- Offline QR credentials at the back office (docs/qr.md, docs/backend.md):
-- the device keys it issued, the counters uploaded taps used (replay across
-- every gate), and the outcome of verifying each uploaded QR tap. Times are
-- Unix milliseconds; device keys are the 32 bytes of an Ed25519 public key.

-- +goose Up
CREATE TABLE qr_credentials (
    device        BYTEA PRIMARY KEY,
    token         BYTEA NOT NULL,
    key_id        BIGINT NOT NULL,
    category      BIGINT NOT NULL,
    not_before_ms BIGINT NOT NULL,
    not_after_ms  BIGINT NOT NULL,
    issued_ms     BIGINT NOT NULL,
    revoked_ms    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX qr_credentials_token ON qr_credentials (token);

-- One row per (device, counter): the first tap to use it keeps it.
CREATE TABLE qr_counters (
    device  BYTEA NOT NULL,
    counter BIGINT NOT NULL,
    tap_id  TEXT NOT NULL,
    PRIMARY KEY (device, counter)
);

-- The back office's verdict on an uploaded provisional QR tap (taps.id):
-- confirmed (then the tap is a leg, priced in the credential's category)
-- or refused with a qr.Reason (never settled).
CREATE TABLE qr_outcomes (
    tap_id     BYTEA PRIMARY KEY,
    outcome    TEXT NOT NULL,
    reason     TEXT NOT NULL DEFAULT '',
    detail     TEXT NOT NULL DEFAULT '',
    category   TEXT NOT NULL DEFAULT '',
    checked_ms BIGINT NOT NULL
);

-- +goose Down
DROP TABLE qr_outcomes;
DROP TABLE qr_counters;
DROP TABLE qr_credentials;
