// Package backend is the back office (docs/backend.md): the Store of gates,
// taps, sealed card data, settlement runs and charges on SQLite or
// PostgreSQL; tap ingest (POST /v1/taps); the payment vault; settlement of
// each service day with the capping engine; the operators' read API and
// metrics. The deny-list registry (versions, deltas, its store) is
// backend/denylistreg; the protocol that serves it to gates is
// denylist/dlsync.
package backend
