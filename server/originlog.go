package server

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// A page whose origin is refused sees only a CORS error: the browser
// hides the answer. The server says at info level which origin it refused
// and for which client, so that an operator can add the origin (tokend
// client update --origin). A page retries, so each origin and client is
// logged at most once per refusalEvery, and the table that remembers them
// holds at most refusalMax: when it is full of entries younger than
// refusalEvery, new pairs are not logged until they age out.

// refusalEvery is the least time between two lines for one origin and
// client.
const refusalEvery = time.Minute

// refusalMax bounds the pairs remembered.
const refusalMax = 1024

// maxLoggedOrigin is the longest Origin value logged (a header a stranger
// writes); a longer one is cut.
const maxLoggedOrigin = 200

// refusalLog logs refused origins, rate-limited (see above). It is safe
// for concurrent use.
type refusalLog struct {
	log *slog.Logger
	now func() time.Time

	mu   sync.Mutex
	last map[refusalKey]time.Time // when each pair was last logged
}

type refusalKey struct{ origin, client string }

func newRefusalLog(log *slog.Logger, now func() time.Time) *refusalLog {
	return &refusalLog{log: log, now: now, last: map[refusalKey]time.Time{}}
}

// refused logs that origin was refused on path for client (empty: no
// client lists the origin), unless that pair was logged less than
// refusalEvery ago. It logs no token: the origin, the client ID and the
// path only.
func (l *refusalLog) refused(ctx context.Context, origin, client, path, why string) {
	if len(origin) > maxLoggedOrigin {
		origin = origin[:maxLoggedOrigin] + "…"
	}
	if !l.due(refusalKey{origin, client}) {
		return
	}
	if client == "" {
		client = "-"
	}
	l.log.InfoContext(ctx, "browser origin refused", "origin", origin, "client", client, "path", path, "why", why,
		"fix", "add the origin to the client (tokend client create/update --origin)", "repeats", "logged once a minute per origin and client")
}

// due reports whether k may be logged now, and records it if so.
func (l *refusalLog) due(k refusalKey) bool {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if at, ok := l.last[k]; ok && now.Sub(at) < refusalEvery && now.Sub(at) >= 0 {
		return false
	}
	if _, ok := l.last[k]; !ok && len(l.last) >= refusalMax {
		for old, at := range l.last {
			if d := now.Sub(at); d >= refusalEvery || d < 0 {
				delete(l.last, old)
			}
		}
		if len(l.last) >= refusalMax {
			return false
		}
	}
	l.last[k] = now
	return true
}
