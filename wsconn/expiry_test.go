package wsconn_test

import (
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tokend/tokend/wsconn"
)

// The server announces expiry at the token's exp exactly, wherever within
// a second the connection opened or renewed (a JWT's exp has whole
// seconds, the clock does not), and tells a renewal the exp it holds.
func TestExpiryNoticeAtExp(t *testing.T) {
	for _, off := range []time.Duration{0, time.Millisecond, 500 * time.Millisecond, 999 * time.Millisecond} {
		t.Run(off.String(), func(t *testing.T) {
			e := newEnv(t)
			e.Advance(off)
			opened := e.Now().Truncate(time.Second)
			exp := opened.Add(61 * time.Second)
			c, _, err := websocket.Dial(t.Context(), e.url, &websocket.DialOptions{HTTPHeader: bearerHeader(e.signed(t, map[string]any{"sub": "alice", "exp": exp.Unix()}, 0))})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			roundTrip(t, c, "hi")
			if d := e.timers.last(); d != exp.Sub(e.Now()) {
				t.Fatalf("opened at exp-%v: expiry notice in %v, want at exp", exp.Sub(e.Now()), d)
			}
			e.Advance(50*time.Second + 999*time.Millisecond - off)
			next := opened.Add(120 * time.Second)
			ack := renew(t, c, e.signed(t, map[string]any{"sub": "alice", "exp": next.Unix()}, 0))
			if ack.Type != wsconn.TypeRenewed || ack.Exp != next.Unix() || e.timers.last() != next.Sub(e.Now()) {
				t.Fatalf("renewed at exp-%v: %+v, notice in %v; want exp %d, notice at it", next.Sub(e.Now()), ack, e.timers.last(), next.Unix())
			}
			expire(t, e, c)
		})
	}
}
