// Package backend is the back office. The deny-list registry (versions,
// deltas, its store) is backend/denylistreg; the protocol that serves it to
// gates is denylist/dlsync.
package backend
