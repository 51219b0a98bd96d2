package wsconn_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/oauth2"

	"github.com/tokend/tokend/refresh"
	"github.com/tokend/tokend/wsconn"
)

// pipeListener is an in-memory network: dials become net.Pipe connections
// accepted by an http.Server. Unlike loopback sockets, pipes let synctest
// see when every goroutine is blocked.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once

	mu     sync.Mutex
	open   []net.Conn
	refuse bool
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return &net.UnixAddr{Name: "pipe", Net: "pipe"} }

func (l *pipeListener) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	l.mu.Lock()
	refuse := l.refuse
	l.mu.Unlock()
	if refuse {
		return nil, errors.New("connection refused")
	}
	srv, cli := net.Pipe()
	l.mu.Lock()
	l.open = append(l.open, srv, cli)
	l.mu.Unlock()
	select {
	case l.conns <- srv:
		return cli, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// drop breaks every connection and refuses new ones when refuse is set.
func (l *pipeListener) drop(refuse bool) {
	l.mu.Lock()
	open := l.open
	l.open, l.refuse = nil, refuse
	l.mu.Unlock()
	for _, c := range open {
		_ = c.Close()
	}
}

// Close returns once every goroutine of the Conn has, whatever it was
// doing: connected with a renewal pending, or waiting to reconnect. In a
// synctest bubble, synctest.Wait lets every goroutine that is ending end,
// so one still there is blocked: leaked.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ln := newPipeListener()
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ws, err := websocket.Accept(w, r, nil)
			if err != nil {
				return
			}
			defer ws.CloseNow()
			for {
				typ, data, err := ws.Read(context.Background())
				if err != nil || ws.Write(context.Background(), typ, data) != nil {
					return
				}
			}
		})}
		go func() { _ = srv.Serve(ln) }()
		src := refresh.New(func(context.Context) (*oauth2.Token, error) {
			return &oauth2.Token{AccessToken: "t", Expiry: time.Now().Add(time.Hour)}, nil
		}, nil)
		transport := &http.Transport{DialContext: ln.dial}
		opts := &wsconn.Options{Dial: &websocket.DialOptions{HTTPClient: &http.Client{Transport: transport}}}

		// Connected, the renewal an hour away.
		c, err := wsconn.Dial(t.Context(), "ws://pipe/", src, opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Write(t.Context(), websocket.MessageText, []byte("hi")); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.Read(t.Context()); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if n := connGoroutines(); n < 4 {
			t.Fatalf("%d goroutines of a connected Conn, want run, writer, reader and renewer", n)
		}
		_ = c.Close()
		synctest.Wait()
		if n := connGoroutines(); n != 0 {
			t.Fatalf("%d goroutines of the Conn left after Close:\n%s", n, stacks())
		}

		// Waiting to reconnect.
		c, err = wsconn.Dial(t.Context(), "ws://pipe/", src, opts)
		if err != nil {
			t.Fatal(err)
		}
		ln.drop(true)
		synctest.Wait() // the client has lost the connection and waits to retry
		_ = c.Close()
		synctest.Wait()
		if n := connGoroutines(); n != 0 {
			t.Fatalf("%d goroutines of the Conn left after Close while reconnecting:\n%s", n, stacks())
		}

		_ = src.Close()
		_ = srv.Close()
		transport.CloseIdleConnections()
		ln.drop(true)
	})
}

func stacks() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}

// connGoroutines counts the goroutines running the client's code.
func connGoroutines() int {
	n := 0
	for g := range strings.SplitSeq(stacks(), "\n\n") {
		if strings.Contains(g, "wsconn.(*Conn)") {
			n++
		}
	}
	return n
}
