package wsconn_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/oauth2"

	"github.com/tokend/tokend/refresh"
	"github.com/tokend/tokend/wsconn"
)

// BenchmarkMessage measures one message and its echo through wsconn.Conn
// and through a raw coder/websocket connection to the same server. With
// OnMessage the echo is taken on the goroutine that reads the connection,
// as the raw loop does; Read adds a goroutine hand-off.
func BenchmarkMessage(b *testing.B) {
	s := newBenchServer(b)
	msg := []byte("hello, this is a chat message of a typical size")
	b.Run("raw", func(b *testing.B) {
		ws := s.rawDial(b)
		b.ReportAllocs()
		for b.Loop() {
			if err := ws.Write(b.Context(), websocket.MessageText, msg); err != nil {
				b.Fatal(err)
			}
			if _, _, err := ws.Read(b.Context()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw/via-goroutine", func(b *testing.B) {
		// The raw connection read by a goroutine that hands each message
		// over a channel, as Read gets them: the cost of the hand-off alone.
		ws := s.rawDial(b)
		in := make(chan []byte, 64)
		go func() {
			defer close(in)
			for {
				_, data, err := ws.Read(b.Context())
				if err != nil {
					return
				}
				in <- data
			}
		}()
		b.ReportAllocs()
		for b.Loop() {
			if err := ws.Write(b.Context(), websocket.MessageText, msg); err != nil {
				b.Fatal(err)
			}
			if _, ok := <-in; !ok {
				b.Fatal("connection lost")
			}
		}
	})
	b.Run("wsconn.Conn/OnMessage", func(b *testing.B) {
		// The next message is written from the callback that receives the
		// echo, as the raw loop writes after its Read returns.
		var conn atomic.Pointer[wsconn.Conn]
		left, done := b.N, make(chan error, 1)
		c, err := wsconn.Dial(b.Context(), s.url(), s.source(b), &wsconn.Options{
			OnMessage: func(_ websocket.MessageType, _ []byte) {
				if left--; left == 0 {
					done <- nil
					return
				}
				if err := conn.Load().Write(b.Context(), websocket.MessageText, msg); err != nil {
					done <- err
				}
			},
		})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		conn.Store(c)
		b.ReportAllocs()
		b.ResetTimer()
		if err := c.Write(b.Context(), websocket.MessageText, msg); err != nil {
			b.Fatal(err)
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	})
	b.Run("wsconn.Conn/Read", func(b *testing.B) {
		c, err := wsconn.Dial(b.Context(), s.url(), s.source(b), nil)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		b.ReportAllocs()
		for b.Loop() {
			if err := c.Write(b.Context(), websocket.MessageText, msg); err != nil {
				b.Fatal(err)
			}
			if _, _, err := c.Read(b.Context()); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkReconnectAfterAuthClose measures the time from the server
// closing a connection with CloseTokenExpired to the client being connected
// again with a fresh token (fetch included). The client's clock moves
// HealthyAfter at each reading, so that every connection counts as one
// that lived out its token: the client reconnects at once, as it does at a
// real expiry, instead of backing off as from a server that closes every
// connection as soon as it opens.
func BenchmarkReconnectAfterAuthClose(b *testing.B) {
	s := newBenchServer(b)
	connected := make(chan struct{}, 1)
	o := &wsconn.Options{
		OnConnect: func(context.Context, func(context.Context, websocket.MessageType, []byte) error) error {
			select {
			case connected <- struct{}{}:
			default:
			}
			return nil
		},
	}
	var readings atomic.Int64
	wsconn.SetClock(o, func() time.Time { return time.Unix(0, 0).Add(time.Duration(readings.Add(1)) * wsconn.HealthyAfter) })
	c, err := wsconn.Dial(b.Context(), s.url(), s.source(b), o)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	<-connected
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Write(b.Context(), websocket.MessageText, []byte("close me")); err != nil {
			b.Fatal(err)
		}
		<-connected
	}
}

// benchServer is an echo server whose connections close with
// CloseTokenExpired on "close me".
type benchServer struct {
	e    *env
	addr string
}

func newBenchServer(b *testing.B) *benchServer {
	e := newEnv(b)
	h := e.handler(func(ctx context.Context, c *wsconn.ServerConn) {
		for {
			typ, data, err := c.Read(ctx)
			if err != nil {
				return
			}
			if string(data) == "close me" {
				_ = c.Close(wsconn.CloseTokenExpired, "token expired")
				return
			}
			if err := c.Write(ctx, typ, data); err != nil {
				return
			}
		}
	})
	srv := newLoopback(b, h)
	return &benchServer{e: e, addr: srv}
}

func (s *benchServer) url() string { return "ws://" + s.addr }

// rawDial opens a plain coder/websocket connection, closed with the
// benchmark.
func (s *benchServer) rawDial(b *testing.B) *websocket.Conn {
	ws, _, err := websocket.Dial(b.Context(), s.url(), &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + s.tok(b)}}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = ws.CloseNow() })
	return ws
}

func (s *benchServer) tok(b testing.TB) string { return s.e.token(b, "alice", time.Hour) }

func (s *benchServer) source(b testing.TB) *refresh.Source {
	src := refresh.New(func(context.Context) (*oauth2.Token, error) {
		return &oauth2.Token{AccessToken: s.tok(b)}, nil
	}, neverBackOff())
	b.Cleanup(func() { _ = src.Close() })
	return src
}
