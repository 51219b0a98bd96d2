package server

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokend/tokend/internal/oauth"
	"github.com/tokend/tokend/store"
)

// CORS (the Fetch standard's CORS protocol) for browser apps, on the
// endpoints a page calls: POST /oauth/token, POST /oauth/revoke and /v1/*.
//
// The origins allowed are those of the clients the store holds at the
// request (store.Client.Origins). A preflight (OPTIONS) from an allowed
// origin is answered 204 with the Access-Control-Allow-* headers, any
// other OPTIONS 204 without them; an actual request from an allowed
// origin gets Access-Control-Allow-Origin (that origin, never "*") and
// Access-Control-Allow-Credentials, so that the page may read the answer,
// errors included. Which pages may read answers is all the union says:
// once the client of a request is known, /oauth/token and /oauth/revoke
// refuse an Origin that is not that client's (checkClientOrigin).
// Requests without an Origin header (servers, curl) are not affected and
// never read the store for it.
//
// The union of every client's origins is kept in memory and read again
// at most every originsReload, but it only ever says no on its own: an
// origin it holds is allowed only once one of the clients that listed
// it, read from the store at the request, still lists it, so that a
// client deleted, or created again without that origin, loses it at once
// on every instance. An origin the union does not hold is refused until
// the next read (a new client's page waits up to originsReload). If the
// store cannot be read, the union answers: the request then meets the
// same store and fails with 503, which the page may read.

// originsReload bounds how often the union of the clients' origins is
// read from the store when nothing forces it.
const originsReload = 5 * time.Second

// CORS answer headers.
const (
	corsAllowMethods = "POST, GET, DELETE"
	corsAllowHeaders = "Authorization, Content-Type, X-Tokend"
	corsMaxAge       = "600" // seconds a browser may cache a preflight
)

// corsExposeHeaders are the response headers beyond the CORS-safelisted
// ones that a page may read (Fetch, "CORS-safelisted response-header
// name").
const corsExposeHeaders = "Retry-After, WWW-Authenticate"

// corsPath reports whether path is served with CORS.
func corsPath(path string) bool {
	return path == "/oauth/token" || path == "/oauth/revoke" || path == userinfoPath || strings.HasPrefix(path, "/v1/")
}

// originSet is the union of the clients' origins, checked against the
// store before it allows one (see above).
type originSet struct {
	list func(ctx context.Context) ([]store.Client, error)
	get  func(ctx context.Context, id string) (store.Client, error)
	now  func() time.Time
	log  func(ctx context.Context, err error)
	mu   sync.Mutex // held while loading, so that one request loads
	cur  atomic.Pointer[originSnapshot]
}

type originSnapshot struct {
	set    map[string][]string // origin → the IDs of the clients that list it
	loaded time.Time
	fresh  bool // read from the store (not kept from before a failed read)
}

// allowed reports whether origin is some client's now.
func (o *originSet) allowed(ctx context.Context, origin string) bool {
	ids := o.union(ctx, false).set[origin]
	if len(ids) == 0 {
		return false
	}
	for _, id := range ids {
		c, err := o.get(ctx, id)
		switch {
		case err == nil && slices.Contains(c.Origins, origin):
			return true
		case err != nil && !errors.Is(err, store.ErrNotFound):
			o.log(ctx, err)
			return true // the store cannot tell; see above
		}
	}
	// Every client that listed it is gone or has dropped it: read the
	// union again, in case a client created since lists it.
	snap := o.union(ctx, true)
	return snap.fresh && len(snap.set[origin]) > 0
}

// union returns the union of the clients' origins. One request reloads a
// stale union (or any, with force) while the others use the one before; a
// store that fails leaves that one in place (none at first) until the
// next attempt, originsReload later.
func (o *originSet) union(ctx context.Context, force bool) *originSnapshot {
	snap := o.cur.Load()
	if snap != nil && !force && o.current(snap) {
		return snap
	}
	if snap != nil && !force && !o.mu.TryLock() {
		return snap // another request is reloading
	}
	if snap == nil || force {
		o.mu.Lock()
	}
	defer o.mu.Unlock()
	if cur := o.cur.Load(); !force && cur != nil && cur != snap && o.current(cur) {
		return cur // loaded meanwhile
	}
	next := &originSnapshot{loaded: o.now(), fresh: true}
	if cs, err := o.list(ctx); err != nil {
		o.log(ctx, err)
		next.fresh = false
		if snap != nil {
			next.set = snap.set
		}
	} else {
		next.set = map[string][]string{}
		for _, c := range cs {
			for _, v := range c.Origins {
				next.set[v] = append(next.set[v], c.ID)
			}
		}
	}
	o.cur.Store(next)
	return next
}

func (o *originSet) current(snap *originSnapshot) bool {
	d := o.now().Sub(snap.loaded)
	return d >= 0 && d < originsReload
}

// cors adds the CORS headers of a request to a CORS path and reports
// whether the request was a preflight, which it has answered.
func (s *Server) cors(w http.ResponseWriter, r *http.Request) (answered bool) {
	h := w.Header()
	h.Add("Vary", "Origin")
	origin := r.Header.Get("Origin")
	ok := origin != "" && len(r.Header.Values("Origin")) == 1 && s.origins.allowed(r.Context(), origin)
	if !ok && origin != "" {
		s.refusals.refused(r.Context(), origin, "", r.URL.Path, "no client lists it")
	}
	if ok {
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Allow-Credentials", "true")
		if r.Method != http.MethodOptions {
			// A page backs off by Retry-After (429, 503) only if it may
			// read it.
			h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		}
	}
	if r.Method != http.MethodOptions {
		return false
	}
	if ok {
		h.Set("Access-Control-Allow-Methods", corsAllowMethods)
		h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
		h.Set("Access-Control-Max-Age", corsMaxAge)
	}
	w.WriteHeader(http.StatusNoContent)
	return true
}

// checkClientOrigin refuses a request that carries an Origin header not
// among c's origins: 401 invalid_client, with no challenge (a browser
// would prompt for a password), and logs the refusal (refusalLog). It is
// no failed authentication (the client may have proved its secret, and an
// Origin is no credential), so it counts nothing for the throttle.
func (s *Server) checkClientOrigin(r *http.Request, c store.Client) error {
	vs := r.Header.Values("Origin")
	if len(vs) == 0 {
		return nil
	}
	if len(vs) == 1 && slices.Contains(c.Origins, vs[0]) {
		return nil
	}
	s.refusals.refused(r.Context(), strings.Join(vs, ", "), c.ID, r.URL.Path, "not among the client's origins")
	return &Error{Status: http.StatusUnauthorized, Code: oauth.InvalidClient, Description: "origin not allowed for this client"}
}
