package denylist

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Files of a replica directory.
const (
	// SnapshotFile is the signed snapshot the replica starts from.
	SnapshotFile = "snapshot.fgdl"
	// deltaPattern names each signed delta applied since the snapshot.
	deltaPattern = "delta-%020d-%020d.fgdl"
)

// ReplicaConfig configures a Replica.
type ReplicaConfig struct {
	ListID ListID // the only list this gate accepts
	// PublicKey is the back office's deny-list signing key, the root of the
	// gate's trust: keys announced under it are added (see
	// Replica.ParseHead and TrustFile).
	PublicKey ed25519.PublicKey
	// MaxEntries is the largest list this gate accepts (default
	// DefaultMaxEntries). A file announcing more is refused on its header,
	// before its body is read, so a hostile server cannot make the gate read,
	// store or hold more than about 8 bytes × MaxEntries.
	MaxEntries int
}

// DefaultMaxEntries is ReplicaConfig.MaxEntries by default: 16 M entries,
// a 128 MiB snapshot, 1.6 times the 10 M a large network plans for.
const DefaultMaxEntries = 1 << 24

// Replica is a gate's copy of the deny list: the list in force in memory,
// persisted in a directory as the last signed snapshot plus the signed
// deltas applied since. Lookups (Contains, List) never wait: each version is
// immutable and swapped in atomically. Updates are serialised, verified
// completely (signature, list id, version continuity, consistency) and made
// durable before the swap, so a refused or interrupted update leaves the
// last good list in force, in memory and on disk.
type Replica struct {
	dir    string
	id     ListID
	anchor ed25519.PublicKey // the configured key
	max    int               // MaxEntries

	cur atomic.Pointer[List]

	mu     sync.Mutex // serialises updates, compaction and the files
	deltas []string   // delta files after the snapshot, in chain order
	// Trust, guarded by mu: the keys lists and heads may be signed by, the
	// issue time of the head that set them, and which key signed each file.
	keys       []ed25519.PublicKey
	keysIssued time.Time
	snapKey    ed25519.PublicKey
	deltaKeys  []ed25519.PublicKey // parallel to deltas
	suspect    atomic.Bool         // a delta did not fit: only a snapshot can repair

	beforeRename func(tmp string) error // tests: simulate a crash
}

// OpenReplica opens (creating it if needed) the replica in dir and loads
// the persisted list: the snapshot, verified, then every delta that
// continues it, verified. Leftover temporary files of a crash are removed;
// delta files that do not continue the chain or fail verification are
// removed too (the gate will fetch them again). A snapshot that fails
// verification is an error: the caller decides whether to move it aside
// and start empty. Without a snapshot the replica holds Empty(ListID).
func OpenReplica(ctx context.Context, dir string, cfg ReplicaConfig) (*Replica, error) {
	if err := cfg.ListID.Valid(); err != nil {
		return nil, err
	}
	if len(cfg.PublicKey) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: public key of %d bytes", ErrKey, len(cfg.PublicKey))
	}
	err := os.MkdirAll(dir, 0o755)
	if err != nil {
		return nil, fmt.Errorf("denylist: replica dir: %w", err)
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultMaxEntries
	}
	r := &Replica{dir: dir, id: cfg.ListID, anchor: cfg.PublicKey, max: min(cfg.MaxEntries, MaxEntries)}
	if r.keys, r.keysIssued, err = loadTrust(dir, cfg.PublicKey); err != nil {
		return nil, err
	}
	deltas, err := scanReplicaDir(dir)
	if err != nil {
		return nil, err
	}
	list, err := r.loadSnapshot(ctx, cfg.ListID)
	if err != nil {
		return nil, err
	}
	if list, err = r.replayDeltas(ctx, list, deltas); err != nil {
		return nil, err
	}
	r.cur.Store(list)
	return r, nil
}

// deltaName is a delta file of the replica directory and the versions
// its name says it spans.
type deltaName struct {
	name     string
	from, to uint64
}

// scanReplicaDir removes temporary files a crash left and lists the delta
// files.
func scanReplicaDir(dir string) ([]deltaName, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("denylist: replica dir: %w", err)
	}
	var deltas []deltaName
	for _, e := range entries {
		name := e.Name()
		var from, to uint64
		switch {
		case strings.HasPrefix(name, tmpPrefix):
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return nil, fmt.Errorf("denylist: remove leftover: %w", err)
			}
		case parseDeltaName(name, &from, &to):
			deltas = append(deltas, deltaName{name, from, to})
		}
	}
	return deltas, nil
}

// loadSnapshot reads the replica's snapshot (an empty list when there is
// none) under any trusted key; its size on disk lets the set be allocated
// once.
func (r *Replica) loadSnapshot(ctx context.Context, id ListID) (*List, error) {
	f, err := os.Open(filepath.Join(r.dir, SnapshotFile))
	if errors.Is(err, os.ErrNotExist) {
		return Empty(id), nil
	}
	if err != nil {
		return nil, fmt.Errorf("denylist: %w", err)
	}
	defer f.Close()
	size := int64(-1)
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		size = st.Size()
	}
	list, key, err := readSnapshotFileAny(&ctxReader{ctx, bufio.NewReaderSize(f, 1<<20)}, size, r.keys)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", SnapshotFile, err)
	}
	if list.id != id {
		return nil, fmt.Errorf("load %s: %w: %q, configured %q", SnapshotFile, ErrListID, list.id, id)
	}
	r.snapKey = key
	return list, nil
}

// replayDeltas applies the chain of deltas that continues list, in order,
// and removes the files that are older, off the chain or damaged.
func (r *Replica) replayDeltas(ctx context.Context, list *List, deltas []deltaName) (*List, error) {
	slices.SortFunc(deltas, func(a, b deltaName) int {
		if a.from != b.from {
			return compareUint(a.from, b.from)
		}
		return compareUint(b.to, a.to)
	})
	var stale []string
	for _, dn := range deltas {
		next, signer, err := r.loadDelta(ctx, list, dn.name)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			stale = append(stale, dn.name) // older, off-chain or damaged
			continue
		}
		list = next
		r.deltas = append(r.deltas, dn.name)
		r.deltaKeys = append(r.deltaKeys, signer)
	}
	if err := r.removeFiles(stale); err != nil {
		return nil, err
	}
	return list, nil
}

func compareUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func parseDeltaName(name string, from, to *uint64) bool {
	n, err := fmt.Sscanf(name, deltaPattern, from, to)
	return err == nil && n == 2 && name == fmt.Sprintf(deltaPattern, *from, *to)
}

func (r *Replica) loadDelta(ctx context.Context, list *List, name string) (*List, ed25519.PublicKey, error) {
	f, err := os.Open(filepath.Join(r.dir, name))
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	_, d, signer, err := readAny(&ctxReader{ctx, bufio.NewReader(f)}, r.keys)
	if err != nil {
		return nil, nil, err
	}
	if d == nil {
		return nil, nil, fmt.Errorf("%w: a snapshot where a delta is needed", ErrKind)
	}
	next, err := list.Apply(d)
	return next, signer, err
}

func (r *Replica) removeFiles(names []string) error {
	if len(names) == 0 {
		return nil
	}
	for _, name := range names {
		if err := os.Remove(filepath.Join(r.dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("denylist: %w", err)
		}
	}
	return syncDir(r.dir)
}

// List returns the list in force. It never blocks.
func (r *Replica) List() *List { return r.cur.Load() }

// Contains reports whether the token is on the list in force. It never
// blocks.
func (r *Replica) Contains(t Token) bool { return r.cur.Load().Contains(t) }

// Since returns the version to ask the back office for changes since: the
// version in force, or 0 (a full snapshot) when the list is empty or a
// delta did not fit it.
func (r *Replica) Since() uint64 {
	if r.suspect.Load() {
		return 0
	}
	return r.cur.Load().version
}

// PendingDeltas returns how many delta files sit on top of the snapshot;
// Compact folds them in.
func (r *Replica) PendingDeltas() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.deltas)
}

// Update is the result of a successful Replica.Update.
type Update struct {
	Kind     Kind
	From, To uint64 // versions before and after
	Entries  int    // entries after
}

// Update reads one signed file (snapshot or delta) from rd and makes it the
// list in force. Refusals, before anything changes, wrap ErrMalformed or
// ErrTruncated (broken file), ErrTooLarge (more entries than MaxEntries),
// ErrSignature, ErrListID, ErrReplay or ErrGap (see VersionError), or
// ErrInconsistent (a delta that does not fit: the replica then asks for a
// snapshot, see Since). The header is checked first, so a file that cannot
// fit is refused before its body is read, and no more than the size the
// header announces is ever read. The file is streamed to a temporary file
// while it is checked, then fsynced and renamed into place; only then is
// the new version swapped in. On any refusal the temporary file is removed:
// nothing unverified stays on disk.
func (r *Replica) Update(ctx context.Context, rd io.Reader) (Update, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cur := r.cur.Load()
	br := bufio.NewReaderSize(&ctxReader{ctx, rd}, 1<<20)
	h, err := r.peekHeader(br, cur)
	if err != nil {
		return Update{}, err
	}
	f, err := os.CreateTemp(r.dir, tmpPrefix+"update-*")
	if err != nil {
		return Update{}, fmt.Errorf("denylist: %w", err)
	}
	// Whatever happens, the temporary file goes: renamed into place on
	// success (then these are no-ops), removed on any failure.
	defer func() {
		f.Close()
		os.Remove(f.Name())
	}()
	// Never read past the announced size (+1 byte, to see trailing bytes).
	body := io.LimitReader(br, h.Size()+1)
	next, delta, signer, err := r.verifyInto(ctx, f, body, cur)
	if err != nil {
		return Update{}, err
	}
	if err := ctx.Err(); err != nil {
		return Update{}, err
	}
	if err := r.persist(f, delta, next, signer); err != nil {
		return Update{}, err
	}
	return Update{Kind: h.Kind, From: cur.version, To: next.version, Entries: next.Len()}, nil
}

// peekHeader reads the header without consuming it and refuses a file
// that cannot continue cur or is larger than the gate accepts. The header
// is trusted only for refusing.
func (r *Replica) peekHeader(br *bufio.Reader, cur *List) (*Header, error) {
	hb, err := br.Peek(HeaderSize)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, bufio.ErrBufferFull) {
			return nil, truncated(int64(len(hb)), "file ends inside the header")
		}
		return nil, fmt.Errorf("denylist: read: %w", err)
	}
	h, err := parseHeader(hb)
	if err != nil {
		return nil, err
	}
	if err := r.fits(cur, &h); err != nil {
		return nil, err
	}
	if err := r.bounded(cur, &h); err != nil {
		return nil, err
	}
	return &h, nil
}

// bounded refuses a file larger than the gate can expect: a list of more
// than MaxEntries, or a delta whose counts cannot lead from cur to the
// count it announces (it would be refused as inconsistent after reading).
func (r *Replica) bounded(cur *List, h *Header) error {
	if h.Count > uint64(r.max) {
		return fmt.Errorf("%w: version %d has %d entries, this gate takes at most %d", ErrTooLarge, h.To, h.Count, r.max)
	}
	if h.Kind != KindDelta {
		return nil
	}
	have := uint64(cur.Len())
	if h.Removes > have || have-h.Removes+h.Adds != h.Count {
		r.suspect.Store(true)
		return fmt.Errorf("%w: delta %d→%d (+%d −%d) cannot turn %d entries into %d", ErrInconsistent, h.From, h.To, h.Adds, h.Removes, have, h.Count)
	}
	return nil
}

// verifyInto reads one file from body while copying it to f and returns
// the list it leads to (and the delta, when it is one). Nothing is built
// from bytes not yet verified: the first pass checks the structure and the
// signature, holding only a buffer; the second builds from the verified
// copy in f. A flood within the size limits costs disk I/O and hashing,
// never memory.
func (r *Replica) verifyInto(ctx context.Context, f *os.File, body io.Reader, cur *List) (*List, *Delta, ed25519.PublicKey, error) {
	fw := bufio.NewWriterSize(f, 1<<20)
	d, err := decodeMode(io.TeeReader(body, fw), checkOnly)
	if err != nil {
		return nil, nil, nil, err
	}
	signer, err := verifyAny(r.keys, d.digest, d.Signature)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := fw.Flush(); err != nil {
		return nil, nil, nil, fmt.Errorf("denylist: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, nil, nil, fmt.Errorf("denylist: %w", err)
	}
	built, err := decodeMode(&ctxReader{ctx, bufio.NewReaderSize(f, 1<<20)}, buildOnly)
	if err != nil {
		return nil, nil, nil, err
	}
	built.Signature = d.Signature
	snap, delta := built.result()
	if delta == nil {
		return snap, nil, signer, r.fits(cur, snap.header())
	}
	next, err := cur.Apply(delta)
	if err != nil {
		if errors.Is(err, ErrInconsistent) {
			r.suspect.Store(true)
		}
		return nil, nil, nil, err
	}
	return next, delta, signer, nil
}

// persist makes the verified file in f durable under its name, then swaps
// next in: durable first, then visible.
func (r *Replica) persist(f *os.File, delta *Delta, next *List, signer ed25519.PublicKey) error {
	if delta != nil {
		name := fmt.Sprintf(deltaPattern, delta.From, delta.To)
		if err := commitTemp(f, filepath.Join(r.dir, name), 0o644, r.beforeRename); err != nil {
			return err
		}
		r.deltas = append(r.deltas, name)
		r.deltaKeys = append(r.deltaKeys, signer)
		r.swap(next)
		return nil
	}
	if err := commitTemp(f, filepath.Join(r.dir, SnapshotFile), 0o644, r.beforeRename); err != nil {
		return err
	}
	old := r.deltas
	r.deltas, r.deltaKeys, r.snapKey = nil, nil, signer
	r.swap(next)
	// The snapshot is in place; stale deltas left by a failure here are
	// skipped at the next open.
	return r.removeFiles(old)
}

func (r *Replica) swap(next *List) {
	r.cur.Store(next)
	r.suspect.Store(false)
}

// RequireSnapshot distrusts the list in force: Since returns 0 until a
// snapshot is applied, and a snapshot of the version in force may replace
// it. A sync client calls it when a signed head names the version in force
// with another content hash (the back office was restored and diverged).
// Lookups go on with the list in force meanwhile.
func (r *Replica) RequireSnapshot() { r.suspect.Store(true) }

// fits refuses a file whose header cannot continue cur: another list, an
// older version, or a delta that does not start at cur. A snapshot of the
// version in force is taken only to repair a suspect list.
func (r *Replica) fits(cur *List, h *Header) error {
	if h.ListID != r.id {
		return fmt.Errorf("%w: gate takes %q, file is for %q", ErrListID, r.id, h.ListID)
	}
	if h.Kind == KindSnapshot {
		if h.To < cur.version || (h.To == cur.version && !r.suspect.Load()) {
			return &VersionError{Have: cur.version, To: h.To, err: ErrReplay}
		}
		return nil
	}
	if h.To <= cur.version {
		return &VersionError{Have: cur.version, From: h.From, To: h.To, err: ErrReplay}
	}
	if h.From != cur.version {
		return &VersionError{Have: cur.version, From: h.From, To: h.To, err: ErrGap}
	}
	return nil
}

// Compact folds the pending deltas into a new snapshot file. The snapshot
// is rebuilt from the list in force and must verify with the signature the
// last delta carried for it, which proves the gate's list equals the back
// office's; if it does not, Compact returns ErrInconsistent, leaves the
// files as they are and makes Since return 0 so that the next sync fetches
// a full snapshot.
func (r *Replica) Compact(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.deltas) == 0 {
		return nil
	}
	cur := r.cur.Load()
	var signer ed25519.PublicKey
	err := writeFileAtomic(ctx, filepath.Join(r.dir, SnapshotFile), 0o644, func(w io.Writer) error {
		var err error
		signer, err = cur.writeVerifiedAny(w, r.keys)
		return err
	}, r.beforeRename)
	if err != nil {
		if errors.Is(err, ErrInconsistent) {
			r.suspect.Store(true)
		}
		return err
	}
	old := r.deltas
	r.deltas, r.deltaKeys, r.snapKey = nil, nil, signer
	return r.removeFiles(old)
}
