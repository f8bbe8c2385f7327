-- Journeys (docs/backend.md, "Settlement"): settlement gives the capping
-- engine each leg's role ("on", "off" or "") and stop, so its journeys rules
-- pair tap-ons with tap-offs. Tap-offs become legs (leg = 1) like tap-ons;
-- the taps stored before keep their meaning: role and stop are read back
-- from the stored record, and their tap-offs become legs the same way.

-- +goose Up
ALTER TABLE taps ADD COLUMN role TEXT NOT NULL DEFAULT '';
ALTER TABLE taps ADD COLUMN stop TEXT NOT NULL DEFAULT '';
UPDATE taps SET
    role = COALESCE(convert_from(record, 'UTF8')::jsonb #>> '{location,role}', ''),
    stop = COALESCE(convert_from(record, 'UTF8')::jsonb #>> '{location,stop}', '')
WHERE token IS NOT NULL AND convert_from(record, 'UTF8')::jsonb #>> '{location,role}' IS NOT NULL;
UPDATE taps SET leg = 1
WHERE leg = 0 AND role = 'off' AND token IS NOT NULL
    AND convert_from(record, 'UTF8')::jsonb ->> 'decision' = 'open'
    AND COALESCE((convert_from(record, 'UTF8')::jsonb ->> 'provisional')::boolean, false) = false;
-- A confirmed QR tap-off is a leg in its credential's category.
UPDATE taps SET leg = 1, category = o.category
FROM qr_outcomes o
WHERE o.tap_id = taps.id AND o.outcome = 'confirmed'
    AND taps.leg = 0 AND taps.role = 'off' AND taps.token IS NOT NULL
    AND convert_from(taps.record, 'UTF8')::jsonb ->> 'decision' = 'open';
DROP INDEX taps_token;
CREATE INDEX taps_token ON taps (token, time_ms, leg, received_ms, mode, category, zones, role, stop) WHERE token IS NOT NULL;

-- +goose Down
DROP INDEX taps_token;
CREATE INDEX taps_token ON taps (token, time_ms, leg, received_ms, mode, category, zones) WHERE token IS NOT NULL;
UPDATE taps SET leg = 0 WHERE role = 'off';
ALTER TABLE taps DROP COLUMN stop;
ALTER TABLE taps DROP COLUMN role;
