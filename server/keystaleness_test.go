package server_test

import (
	"context"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/tokend/tokend/server"
	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/memory"
)

// listCounting counts ListKeys, the read behind every reload of the keys.
type listCounting struct {
	store.Store
	lists atomic.Int64
}

func (s *listCounting) ListKeys(ctx context.Context) ([]store.Key, error) {
	s.lists.Add(1)
	return s.Store.ListKeys(ctx)
}

// A busy server reads its keys once per KeyStaleness, not once per
// signature: 50 grants and 50 JWKS answers within it cost one read; the
// first after it, one more. With KeyStaleness negative, every one reads.
func TestKeysReadOncePerStaleness(t *testing.T) {
	for _, tc := range []struct {
		name      string
		staleness server.Config
		want      int64
	}{
		{"default", server.Config{}, 1},
		{"every signature", server.Config{KeyStaleness: -1}, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &listCounting{Store: memory.New()}
			e := newEnvOn(t, st, func(c *server.Config) { c.KeyStaleness = tc.staleness.KeyStaleness })
			e.clock.Advance(server.DefaultKeyStaleness) // past the reads of the set-up
			before := st.lists.Load()
			for range 50 {
				if a := e.post("/oauth/token", appID, appSecret, url.Values{"grant_type": {"client_credentials"}}); a.status != http.StatusOK {
					t.Fatalf("client_credentials: %d %v", a.status, a.body)
				}
				if kids, _ := e.jwksKids(); len(kids) != 1 {
					t.Fatalf("JWKS kids %v", kids)
				}
			}
			if got := st.lists.Load() - before; got != tc.want {
				t.Fatalf("%d reads of the keys for 50 grants and 50 JWKS answers; want %d", got, tc.want)
			}
			e.clock.Advance(server.DefaultKeyStaleness)
			e.post("/oauth/token", appID, appSecret, url.Values{"grant_type": {"client_credentials"}})
			if got := st.lists.Load() - before; got != tc.want+1 {
				t.Fatalf("after KeyStaleness: %d reads; want %d", got, tc.want+1)
			}
		})
	}
}
