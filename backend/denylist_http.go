package backend

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/faregate/faregate/denylist"
)

// DenylistHandler serves GET /v1/denylist?since=N to gates (mount it with
// mux.Handle("GET /v1/denylist", reg.DenylistHandler())):
//
//	200  a signed delta from N to the current version, or the snapshot when
//	     N is 0, older than the retained changes, or the delta would be no
//	     smaller (the file's header says which)
//	204  N is the current version: nothing to apply
//	304  If-None-Match holds the answer's ETag
//	400  N is not a version number
//	409  N is newer than the current version (the back office was restored
//	     from an older backup?): the gate keeps its list
//
// Every answer to a given (N, current version) is the same bytes, so the
// ETag names the pair and a CDN may cache it for MaxAge: the files are
// signed, the cache need not be trusted.
func (r *DenylistRegistry) DenylistHandler() http.Handler {
	return http.HandlerFunc(r.serveDenylist)
}

func (r *DenylistRegistry) serveDenylist(w http.ResponseWriter, req *http.Request) {
	since := uint64(0)
	if s := req.URL.Query().Get("since"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			http.Error(w, "since: want a version number", http.StatusBadRequest)
			return
		}
		since = v
	}
	a, err := r.answer(req.Context(), since)
	if err != nil {
		http.Error(w, "deny list unavailable", http.StatusServiceUnavailable)
		return
	}
	h := w.Header()
	if a.ahead {
		h.Set("Cache-Control", "no-store")
		http.Error(w, fmt.Sprintf("version %d is newer than the back office's %d", since, a.list.Version()), http.StatusConflict)
		return
	}
	kind := "d"
	switch {
	case a.upToDate:
		kind = "u"
	case a.snapshot != nil:
		kind = "s"
	}
	etag := fmt.Sprintf(`"%s-%d-%d-%s"`, r.id, since, a.list.Version(), kind)
	h.Set("ETag", etag)
	h.Set("Cache-Control", fmt.Sprintf("public, max-age=%d", int(r.maxAge.Seconds())))
	if etagMatch(req.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if a.upToDate {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	h.Set("Content-Type", denylist.MediaType)
	if a.snapshot != nil {
		size := int64(denylist.HeaderSize) + 8*int64(a.snapshot.Len()) + denylist.SignatureSize
		h.Set("Content-Length", strconv.FormatInt(size, 10))
		if req.Method == http.MethodHead {
			return
		}
		a.snapshot.WriteTo(w) // a failed write is the client's problem
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(a.delta)))
	if req.Method == http.MethodHead {
		return
	}
	w.Write(a.delta)
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
	for len(s) > 0 && (s[0] == ' ' || s[0] == ',' || s[0] == '\t') {
		s = s[1:]
	}
	i := 0
	if len(s) >= 2 && s[:2] == "W/" {
		i = 2
	}
	if i < len(s) && s[i] == '"' {
		if j := indexByteFrom(s, '"', i+1); j >= 0 {
			return s[:j+1], s[j+1:]
		}
		return s, ""
	}
	j := indexByteFrom(s, ',', 0)
	if j < 0 {
		return s, ""
	}
	return s[:j], s[j:]
}

func indexByteFrom(s string, c byte, from int) int {
	for i := from; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}
