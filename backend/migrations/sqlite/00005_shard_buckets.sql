-- Sharded settlement (docs/operations.md) reads a shard's taps through an
-- index by the shard key's top byte on PostgreSQL. SQLite settles with one
-- worker: it gets no such index (it would cost ingest a fourth B-tree), and
-- the same query picks its tokens from taps_received. This migration keeps
-- the two engines' versions in step.

-- +goose Up
SELECT 1;

-- +goose Down
SELECT 1;
