package oda

import (
	"bytes"
	"container/list"
	"hash/maphash"
	"sync"
)

// issuerCache keeps recovered issuer public keys by certificate, so a
// repeat issuer costs no RSA operation for its certificate. Only
// certificates that passed every check that does not depend on the
// transaction are kept; the issuer identifier, expiry and revocation are
// checked on every tap. An entry matches only the same CA key entry and the
// same certificate, remainder and exponent bytes. Least recently used
// entries are evicted beyond the bound. Safe for concurrent use.
type issuerCache struct {
	mu    sync.Mutex
	seed  maphash.Seed
	size  int
	items map[uint64]*list.Element
	lru   list.List // of *cacheEntry, most recent first
}

type cacheEntry struct {
	sum            uint64
	ca             *caEntry
	cert, rem, exp []byte
	val            *issuerCert
}

func newIssuerCache(size int) *issuerCache {
	return &issuerCache{seed: maphash.MakeSeed(), size: size, items: make(map[uint64]*list.Element, size)}
}

func (c *issuerCache) get(ca *caEntry, cert, rem, exp []byte) *issuerCert {
	sum := maphash.Bytes(c.seed, cert)
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[sum]
	if !ok {
		return nil
	}
	e := el.Value.(*cacheEntry)
	if e.ca != ca || !bytes.Equal(e.cert, cert) || !bytes.Equal(e.rem, rem) || !bytes.Equal(e.exp, exp) {
		return nil
	}
	c.lru.MoveToFront(el)
	return e.val
}

func (c *issuerCache) put(ca *caEntry, cert, rem, exp []byte, val *issuerCert) {
	sum := maphash.Bytes(c.seed, cert)
	e := &cacheEntry{sum: sum, ca: ca, cert: bytes.Clone(cert), rem: bytes.Clone(rem), exp: bytes.Clone(exp), val: val}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[sum]; ok {
		el.Value = e
		c.lru.MoveToFront(el)
		return
	}
	c.items[sum] = c.lru.PushFront(e)
	for c.lru.Len() > c.size {
		old := c.lru.Back()
		c.lru.Remove(old)
		delete(c.items, old.Value.(*cacheEntry).sum)
	}
}
