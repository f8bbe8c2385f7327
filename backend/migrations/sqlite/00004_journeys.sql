-- Journeys (docs/backend.md, "Settlement"): settlement gives the capping
-- engine each leg's role ("on", "off" or "") and stop, so its journeys rules
-- pair tap-ons with tap-offs. Tap-offs become legs (leg = 1) like tap-ons;
-- the taps stored before keep their meaning: role and stop are read back
-- from the stored record, and their tap-offs become legs the same way.

-- +goose Up
ALTER TABLE taps ADD COLUMN role TEXT NOT NULL DEFAULT '';
ALTER TABLE taps ADD COLUMN stop TEXT NOT NULL DEFAULT '';
UPDATE taps SET
    role = COALESCE(json_extract(CAST(record AS TEXT), '$.location.role'), ''),
    stop = COALESCE(json_extract(CAST(record AS TEXT), '$.location.stop'), '')
WHERE token IS NOT NULL;
UPDATE taps SET leg = 1
WHERE leg = 0 AND role = 'off' AND token IS NOT NULL
    AND json_extract(CAST(record AS TEXT), '$.decision') = 'open'
    AND COALESCE(json_extract(CAST(record AS TEXT), '$.provisional'), 0) = 0;
-- A confirmed QR tap-off is a leg in its credential's category.
UPDATE taps SET leg = 1,
    category = (SELECT o.category FROM qr_outcomes o WHERE o.tap_id = taps.id)
WHERE leg = 0 AND role = 'off' AND token IS NOT NULL
    AND json_extract(CAST(record AS TEXT), '$.decision') = 'open'
    AND EXISTS (SELECT 1 FROM qr_outcomes o WHERE o.tap_id = taps.id AND o.outcome = 'confirmed');
DROP INDEX taps_token;
CREATE INDEX taps_token ON taps (token, time_ms, leg, received_ms, mode, category, zones, role, stop) WHERE token IS NOT NULL;

-- +goose Down
DROP INDEX taps_token;
CREATE INDEX taps_token ON taps (token, time_ms, leg, received_ms, mode, category, zones) WHERE token IS NOT NULL;
UPDATE taps SET leg = 0 WHERE role = 'off';
ALTER TABLE taps DROP COLUMN stop;
ALTER TABLE taps DROP COLUMN role;
