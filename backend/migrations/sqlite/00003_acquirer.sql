-- The acquirer link's state of each charge (docs/backend.md, "Charging"):
-- the decline category and the recovery plan of the last answer, the
-- attempts made, and the first-use account check of each token. Still no
-- PAN: card data stays in vault.sealed.

-- +goose Up
ALTER TABLE charges ADD COLUMN category TEXT NOT NULL DEFAULT '';
ALTER TABLE charges ADD COLUMN action TEXT NOT NULL DEFAULT '';
ALTER TABLE charges ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE charges ADD COLUMN resubmissions INTEGER NOT NULL DEFAULT 0;
ALTER TABLE charges ADD COLUMN first_declined_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE charges ADD COLUMN next_retry_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE charges ADD COLUMN not_before_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE charges ADD COLUMN retap_seen_ms BIGINT NOT NULL DEFAULT 0;
-- The reversal still owed for the charge's last request (JSON of
-- acquirer.Original: MTI, STAN, times, RRN, terminal, amount; no card
-- data); '' when none. The charge is not sent again while it is set.
ALTER TABLE charges ADD COLUMN reversal TEXT NOT NULL DEFAULT '';
CREATE INDEX charges_retry ON charges (next_retry_ms) WHERE status = 'declined' AND next_retry_ms > 0;
CREATE INDEX charges_debt ON charges (token) WHERE status = 'declined';
CREATE INDEX charges_reversal ON charges (id) WHERE reversal <> '';

CREATE TABLE account_checks (
    token      BLOB PRIMARY KEY,
    code       TEXT NOT NULL,
    checked_ms BIGINT NOT NULL
);

-- +goose Down
DROP TABLE account_checks;
DROP INDEX charges_reversal;
DROP INDEX charges_debt;
DROP INDEX charges_retry;
ALTER TABLE charges DROP COLUMN reversal;
ALTER TABLE charges DROP COLUMN retap_seen_ms;
ALTER TABLE charges DROP COLUMN not_before_ms;
ALTER TABLE charges DROP COLUMN next_retry_ms;
ALTER TABLE charges DROP COLUMN first_declined_ms;
ALTER TABLE charges DROP COLUMN resubmissions;
ALTER TABLE charges DROP COLUMN attempts;
ALTER TABLE charges DROP COLUMN action;
ALTER TABLE charges DROP COLUMN category;
