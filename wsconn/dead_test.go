package wsconn_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
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
				o, disc := r.options(t)
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

// An in-band renewal the server never answers, on a path that still
// carries pings, ends the connection as dead PingTimeout after it was sent,
// and the client reconnects with the Source's current token.
func TestUnansweredRenewalIsDead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRelay(t)
		src := tokenSource(t, time.Minute)
		o, disc := r.options(t)
		o.Renewal = wsconn.RenewInBand
		o.PingInterval = time.Hour // pings are answered; only the renewal is not
		c, err := wsconn.Dial(t.Context(), "ws://relay/", src, o)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		renewal := <-r.got // the server reads the renewal and says nothing
		sent := time.Now()
		if renewal.conn != 0 || !strings.HasPrefix(renewal.data, `{"type":"tokend.renew"`) {
			t.Fatalf("server read %+v, want the renewal", renewal)
		}
		err = <-disc
		if d := time.Since(sent); d != 10*time.Second {
			t.Errorf("dead %v after the renewal was sent, want PingTimeout, 10s", d)
		}
		if !errors.Is(err, wsconn.ErrDeadConnection) {
			t.Errorf("OnDisconnect(%v), want ErrDeadConnection", err)
		}
		time.Sleep(time.Second) // the backoff
		synctest.Wait()
		now, err := src.Token()
		if err != nil {
			t.Fatal(err)
		}
		if r.conns() != 2 || r.link(1).token != now.AccessToken || r.link(1).token == r.link(0).token {
			t.Errorf("%d connections, the second with %q, want 2 and the Source's current token %q", r.conns(), r.link(1).token, now.AccessToken)
		}
	})
}

// With pinging turned off, a dead path goes unnoticed: after 10 minutes
// no disconnect, every Write returned nil, nothing arrived. This is the
// cost PingInterval < 0 documents.
func TestPingOffNoticesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRelay(t)
		o, disc := r.options(t)
		o.PingInterval = -1
		c, err := wsconn.Dial(t.Context(), "ws://relay/", tokenSource(t, time.Hour), o)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		r.link(0).toServer.Store(true)
		r.link(0).toClient.Store(true)
		write(t, c, "m1", "m2", "m3")
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		if len(disc) != 0 || r.conns() != 1 {
			t.Errorf("%d disconnects, %d connections; want none noticed", len(disc), r.conns())
		}
		if got := r.drain(); len(got) != 0 {
			t.Errorf("server read %v through a dead path", got)
		}
	})
}

// Past QueueSize/2 unconfirmed messages a ping goes out at once; at
// QueueSize sending waits for its pong, so Write queues and then refuses
// (ErrQueueFull) instead of dropping. The pong never comes (the path back
// is dead): the early ping finds the path dead after PingTimeout alone,
// the messages sent are reported, and the queued ones go out on the next
// connection.
func TestUnconfirmedAreBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRelay(t)
		o, disc := r.options(t)
		o.QueueSize = 4
		c, err := wsconn.Dial(t.Context(), "ws://relay/", tokenSource(t, time.Hour), o)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		synctest.Wait() // the connection's goroutines are up
		start := time.Now()
		r.link(0).toClient.Store(true)
		write(t, c, "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8")
		if err := c.Write(t.Context(), websocket.MessageText, []byte("m9")); !errors.Is(err, wsconn.ErrQueueFull) {
			t.Errorf("ninth Write: %v, want ErrQueueFull", err)
		}
		err = <-disc
		if d := time.Since(start); d != 10*time.Second || !errors.Is(err, wsconn.ErrDeadConnection) {
			t.Errorf("OnDisconnect(%v) after %v, want ErrDeadConnection after 10s", err, d)
		}
		if got := texts(t, err); !slices.Equal(got, []string{"m1", "m2", "m3", "m4"}) {
			t.Errorf("reported undelivered %q, want m1 to m4", got)
		}
		time.Sleep(time.Second) // the backoff
		synctest.Wait()
		got := r.drain()
		if first, second := onConn(got, 0), onConn(got, 1); !slices.Equal(first, []string{"m1", "m2", "m3", "m4"}) || !slices.Equal(second, []string{"m5", "m6", "m7", "m8"}) {
			t.Errorf("server read %q, then %q; want m1 to m4, then m5 to m8", first, second)
		}
	})
}

// Pongs are read by the goroutine that hands messages to Read. An
// application that reads nothing for 10 minutes while the server sends
// holds it up, and the pongs wait behind unread messages: that is not
// taken for a dead path. Once it reads, the pongs confirm what it wrote,
// so a cut then reports nothing undelivered.
func TestSlowReaderIsNotDead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRelay(t)
		r.send = 200
		o, disc := r.options(t)
		c, err := wsconn.Dial(t.Context(), "ws://relay/", tokenSource(t, time.Hour), o)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		write(t, c, "m1")
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		if len(disc) != 0 || r.conns() != 1 {
			t.Fatalf("%d disconnects, %d connections while the application did not read; want none", len(disc), r.conns())
		}
		for i := range r.send {
			_, data, err := c.Read(t.Context())
			if err != nil || string(data) != fmt.Sprintf("s%d", i) {
				t.Fatalf("Read %d: %q, %v", i, data, err)
			}
		}
		synctest.Wait()
		r.link(0).cut()
		if err := <-disc; errors.Is(err, wsconn.ErrDeadConnection) || texts(t, err) != nil {
			t.Errorf("after the cut: %v, want a lost connection and m1 confirmed", err)
		}
	})
}
