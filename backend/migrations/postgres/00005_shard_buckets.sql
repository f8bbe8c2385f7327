-- Sharded settlement (docs/operations.md): shard i of n is the tokens whose
-- shard key (the token's first four bytes, big-endian) lies in the i-th of
-- n equal ranges. A shard reads only its own taps: this index leads with
-- the key's top byte (256 buckets), so a shard's query is one range scan of
-- the run's received window per bucket it covers, instead of the whole
-- window with every other shard's taps filtered out.

-- +goose Up
CREATE INDEX taps_bucket ON taps ((shard >> 24), received_ms, leg, time_ms, shard, token);

-- +goose Down
DROP INDEX taps_bucket;
