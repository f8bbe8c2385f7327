// Package dlsync is the deny-list sync protocol, both ends of it: the back
// office's HTTP handler (Server), the gate's client (Client) with its HTTP
// and directory sources, the signed head statement that keeps a gate from
// being frozen on an old list, the URL and ETag rules, and the gate's
// metrics. The list itself (format, signatures, the gate's replica) is
// package denylist; the registry that publishes versions is
// backend/denylistreg. docs/denylist.md describes the protocol.
package dlsync

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/faregate/faregate/denylist"
)

// Paths of the protocol, relative to the back office's base URL.
const (
	// ListPath answers GET ?since=N with a delta or a snapshot (200), 204
	// when N is current, 304 on a matching If-None-Match.
	ListPath = "/v1/denylist"
	// HeadPath answers GET with the signed head statement (200).
	HeadPath = "/v1/denylist/head"
)

// Content types of the protocol's bodies.
const (
	ListMediaType = denylist.MediaType
	HeadMediaType = denylist.HeadMediaType
)

// listURL returns base + ListPath?since=N.
func listURL(base *url.URL, since uint64) *url.URL {
	u := base.JoinPath(ListPath)
	u.RawQuery = url.Values{"since": {strconv.FormatUint(since, 10)}}.Encode()
	return u
}

// answerETag names an answer: list id, the gate's version, the current
// version and what the body is (d delta, s snapshot, u up to date). Every
// answer to the same (since, current) pair is the same bytes, which is what
// lets a CDN cache it.
func answerETag(id denylist.ListID, since, current uint64, kind byte) string {
	return fmt.Sprintf(`"%s-%d-%d-%c"`, id, since, current, kind)
}

// etagMatch implements If-None-Match's weak comparison for one or a list
// of ETags, or *.
func etagMatch(header, etag string) bool {
	for header != "" {
		var tag string
		tag, header = nextETag(header)
		if tag == "*" || tag == etag || tag == "W/"+etag {
			return true
		}
	}
	return false
}

func nextETag(s string) (tag, rest string) {
	s = strings.TrimLeft(s, " ,\t")
	i := 0
	if strings.HasPrefix(s, "W/") {
		i = 2
	}
	if i < len(s) && s[i] == '"' {
		if j := strings.IndexByte(s[i+1:], '"'); j >= 0 {
			end := i + 1 + j + 1
			return s[:end], s[end:]
		}
		return s, ""
	}
	j := strings.IndexByte(s, ',')
	if j < 0 {
		return s, ""
	}
	return s[:j], s[j:]
}
