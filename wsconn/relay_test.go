package wsconn_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/oauth2"

	"github.com/tokend/tokend/refresh"
	"github.com/tokend/tokend/wsconn"
)

// relay is an in-memory network (net.Pipe, so that synctest sees every
// goroutine block) with a relay between each client connection and a
// WebSocket server: client ⇄ relay ⇄ server. The relay of a connection
// can stop forwarding in either direction without closing anything (it
// reads and discards, as a path whose NAT forgot the flow: the sender's
// writes succeed, nothing arrives), or cut the connection (close both
// sides).
//
// The server answers pings (coder/websocket does, while it reads), records
// each connection's token and every message it receives, and answers
// nothing else: not even in-band renewals.
type relay struct {
	ln  *pipeListener
	srv *http.Server

	mu    sync.Mutex
	links []*relayLink
	got   chan received // every message the server reads
	send  int           // on each connection the server sends s0, s1, … s(send-1)
}

// received is a message the server read on connection conn (0, 1, …).
type received struct {
	conn int
	data string
}

// relayLink is the relay of one client connection.
type relayLink struct {
	token              string         // the access token the client connected with
	toServer, toClient atomic.Bool    // discarding that direction
	pipes              [4]net.Conn    // client, relay (client side), relay (server side), server
	done               sync.WaitGroup // the pumps
}

func newRelay(t *testing.T) *relay {
	r := &relay{ln: newPipeListener(), got: make(chan received, 100)}
	r.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		tok := strings.TrimPrefix(req.Header.Get("Authorization"), "Bearer ")
		ws, err := websocket.Accept(w, req, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		r.mu.Lock()
		n := len(r.links) - 1
		r.links[n].token = tok
		r.mu.Unlock()
		go func() {
			for i := range r.send {
				if ws.Write(context.Background(), websocket.MessageText, []byte(fmt.Sprintf("s%d", i))) != nil {
					return
				}
			}
		}()
		for {
			_, data, err := ws.Read(context.Background())
			if err != nil {
				return
			}
			r.got <- received{n, string(data)}
		}
	})}
	go func() { _ = r.srv.Serve(r.ln) }()
	t.Cleanup(func() {
		_ = r.srv.Close()
		r.ln.drop(true)
		r.mu.Lock()
		links := r.links
		r.mu.Unlock()
		for _, l := range links {
			l.cut()
		}
	})
	return r
}

// dial is the client's DialContext: a new connection through a new relay.
func (r *relay) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	cli, a := net.Pipe()
	b, srv := net.Pipe()
	l := &relayLink{pipes: [4]net.Conn{cli, a, b, srv}}
	r.mu.Lock()
	r.links = append(r.links, l)
	r.mu.Unlock()
	l.done.Add(2)
	go l.pump(b, a, &l.toServer)
	go l.pump(a, b, &l.toClient)
	select {
	case r.ln.conns <- srv:
		return cli, nil
	case <-ctx.Done():
		l.cut()
		return nil, ctx.Err()
	}
}

// pump copies src to dst, or reads and discards while *discard is set.
// It buffers what dst does not read yet, as the kernels and the network
// on a real path do, so a sender is never held up by a slow receiver.
func (l *relayLink) pump(dst, src net.Conn, discard *atomic.Bool) {
	defer l.done.Done()
	ch := make(chan []byte, 4096)
	defer close(ch)
	l.done.Add(1)
	go func() {
		defer l.done.Done()
		for b := range ch {
			if _, err := dst.Write(b); err != nil {
				_ = src.Close()
				for range ch {
				}
				return
			}
		}
		_ = dst.Close()
	}()
	for {
		buf := make([]byte, 32<<10)
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		if !discard.Load() {
			ch <- buf[:n]
		}
	}
}

// cut closes the connection: both ends see it at once.
func (l *relayLink) cut() {
	for _, p := range l.pipes {
		_ = p.Close()
	}
	l.done.Wait()
}

func (r *relay) link(i int) *relayLink {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.links[i]
}

func (r *relay) conns() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.links)
}

// options returns client options that dial through r and report each
// disconnect on the returned channel. Backoff waits are the shortest
// jitter allows.
func (r *relay) options(t *testing.T) (*wsconn.Options, chan error) {
	disc := make(chan error, 10)
	o := &wsconn.Options{
		Dial:    &websocket.DialOptions{HTTPClient: &http.Client{Transport: &http.Transport{DialContext: r.dial}}},
		Renewal: wsconn.RenewOff,
		OnDisconnect: func(err error) {
			select {
			case disc <- err:
			default: // never block the client: a failing test ends rather than hangs
				t.Errorf("more than %d disconnects, the last: %v", cap(disc), err)
			}
		},
	}
	wsconn.SetTestHooks(o, time.After, func(int64) int64 { return 0 })
	return o, disc
}

// tokenSource returns a Source whose fetches return tok-1, tok-2, … each
// valid for life.
func tokenSource(t *testing.T, life time.Duration) *refresh.Source {
	var n atomic.Int64
	src := refresh.New(func(context.Context) (*oauth2.Token, error) {
		return &oauth2.Token{AccessToken: fmt.Sprintf("tok-%d", n.Add(1)), Expiry: time.Now().Add(life)}, nil
	}, nil)
	t.Cleanup(func() { _ = src.Close() })
	return src
}

// drain returns what the server has read so far (call after
// synctest.Wait).
func (r *relay) drain() []received {
	var got []received
	for {
		select {
		case m := <-r.got:
			got = append(got, m)
		default:
			return got
		}
	}
}
