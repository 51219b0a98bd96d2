package wsconn_test

import (
	"errors"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coder/websocket"

	"github.com/tokend/tokend/wsconn"
)

// The documented bound with the default options: PingInterval + PingTimeout.
const deadBound = 25*time.Second + 10*time.Second

func write(t *testing.T, c *wsconn.Conn, msgs ...string) {
	t.Helper()
	for _, m := range msgs {
		if err := c.Write(t.Context(), websocket.MessageText, []byte(m)); err != nil {
			t.Fatalf("Write(%q): %v", m, err)
		}
	}
}

// texts returns the data of the messages an *UndeliveredError in err holds,
// or nil when err holds none.
func texts(t *testing.T, err error) []string {
	t.Helper()
	var u *wsconn.UndeliveredError
	if !errors.As(err, &u) {
		return nil
	}
	var s []string
	for _, m := range u.Messages {
		if m.Type != websocket.MessageText {
			t.Errorf("message %q of type %v, want text", m.Data, m.Type)
		}
		s = append(s, string(m.Data))
	}
	return s
}

// onConn returns the data of the messages read on connection conn.
func onConn(got []received, conn int) []string {
	var s []string
	for _, m := range got {
		if m.conn == conn {
			s = append(s, m.data)
		}
	}
	return s
}

// A path that stops forwarding without closing, both ways or one way, is
// given up as dead PingInterval + PingTimeout after its last pong at the
// latest (35 s with the defaults, the worst case, which this is: the path
// dies just after a pong). OnDisconnect gets ErrDeadConnection and exactly
// the messages written since that pong; those it confirmed are not among
// them. The client reconnects with the Source's current token, newer than
// the first (which has expired meanwhile), and sends on the new connection
// what is written next. A cut link, for contrast, is noticed at once and
// is not "dead"; what it had not confirmed is reported all the same.
func TestDeadPathIsNoticedAndReported(t *testing.T) {
	for _, tc := range []struct {
		name               string
		toServer, toClient bool // stop forwarding that way
		cut                bool
		arrived            bool // the server read the unconfirmed messages
		wantDead           time.Duration
	}{
		{name: "both ways", toServer: true, toClient: true, wantDead: deadBound},
		{name: "client to server", toServer: true, wantDead: deadBound},
		{name: "server to client", toClient: true, arrived: true, wantDead: deadBound},
		{name: "cut", cut: true, arrived: true, wantDead: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newRelay(t)
				src := tokenSource(t, 30*time.Second)
				o, disc := r.options()
				c, err := wsconn.Dial(t.Context(), "ws://relay/", src, o)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				write(t, c, "m1", "m2")
				time.Sleep(25 * time.Second) // the first ping, answered at once
				synctest.Wait()

				l := r.link(0)
				l.toServer.Store(tc.toServer)
				l.toClient.Store(tc.toClient)
				start := time.Now()
				write(t, c, "m3", "m4") // Write cannot tell
				synctest.Wait()
				if tc.cut {
					l.cut()
				}
				err = <-disc
				if d := time.Since(start); d != tc.wantDead {
					t.Errorf("disconnect noticed after %v, want %v", d, tc.wantDead)
				}
				if dead := errors.Is(err, wsconn.ErrDeadConnection); dead == tc.cut {
					t.Errorf("errors.Is(%v, ErrDeadConnection) = %v, want %v", err, dead, !tc.cut)
				}
				if got := texts(t, err); !slices.Equal(got, []string{"m3", "m4"}) {
					t.Errorf("reported undelivered %q (%v), want m3 and m4", got, err)
				}

				write(t, c, "m5")
				time.Sleep(time.Second) // the backoff, 125 ms here
				synctest.Wait()
				if n := r.conns(); n != 2 {
					t.Fatalf("%d connections, want 2", n)
				}
				got := r.drain()
				want := []string{"m1", "m2"}
				if tc.arrived {
					want = append(want, "m3", "m4")
				}
				if first := onConn(got, 0); !slices.Equal(first, want) {
					t.Errorf("server read %q on the first connection, want %q", first, want)
				}
				if second := onConn(got, 1); !slices.Equal(second, []string{"m5"}) {
					t.Errorf("server read %q on the second connection, want m5", second)
				}
				now, err := src.Token()
				if err != nil {
					t.Fatal(err)
				}
				first, second := r.link(0).token, r.link(1).token
				if second != now.AccessToken || (!tc.cut && second == first) {
					t.Errorf("tokens %q then %q, want the Source's current %q (and a newer one after a dead path)", first, second, now.AccessToken)
				}
				if len(disc) != 0 {
					t.Errorf("further disconnects: %v", <-disc)
				}
			})
		})
	}
}
