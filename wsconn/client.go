package wsconn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/tokend/tokend/refresh"
)

// Errors returned by a client Conn.
var (
	// ErrQueueFull is returned by Write when Options.QueueSize messages are
	// already waiting to be sent.
	ErrQueueFull = errors.New("wsconn: send queue full")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("wsconn: connection closed")
	// ErrOnMessage is returned by Read when Options.OnMessage receives the
	// messages instead.
	ErrOnMessage = errors.New("wsconn: messages go to Options.OnMessage")

	errExpiring = errors.New("wsconn: the server says the token is expiring")
	// errRenewRefused: the server refused an in-band renewal, so this
	// connection can never carry the Source's current token.
	errRenewRefused = errors.New("wsconn: the server refused the renewed token")
)

// Renewal is how a client renews its token before it expires.
type Renewal int

const (
	// RenewAuto renews in band when the server announced support on
	// upgrade (the RenewalHeader response header), and otherwise by make
	// before break.
	RenewAuto Renewal = iota
	// RenewInBand sends the new token over the open connection as a
	// TypeRenew message.
	RenewInBand
	// RenewMakeBeforeBreak opens a second connection with the new token,
	// moves sending to it, then closes the old connection.
	RenewMakeBeforeBreak
	// RenewOff does not renew ahead: the connection is replaced, without
	// losing messages, when the server announces or enforces the expiry.
	RenewOff
)

// DefaultPingInterval and DefaultPingTimeout are Options.PingInterval's
// and Options.PingTimeout's defaults: a dead path is noticed within their
// sum, 35s (docs/client-policy.md, the same as the browser's tokenSocket).
const (
	DefaultPingInterval = 25 * time.Second
	DefaultPingTimeout  = 10 * time.Second
)

// Options configures a client Conn. The zero value is usable. The On…
// callbacks run on the Conn's own goroutines; they may Write, but must not
// call Close, which waits for those goroutines.
type Options struct {
	// Dial is passed to websocket.Dial; its HTTPHeader is copied, never
	// modified.
	Dial *websocket.DialOptions
	// Authorize puts the token on each (re)connect's request, editing a copy
	// of the URL and of the headers. Default: the Authorization header,
	// "Bearer <token>". QueryToken puts it in a query parameter.
	Authorize func(u *url.URL, h http.Header, token string)
	// ExpiredCodes are the close codes that mean "your token expired":
	// the token is invalidated and the client reconnects at once with a
	// fresh one, as after an upgrade refused with 401 or 403; if that
	// connection fails too before it has stayed open 5s, the client backs
	// off. Default 1008 (policy violation) and CloseTokenExpired.
	ExpiredCodes []websocket.StatusCode
	// MinBackoff and MaxBackoff bound the exponential backoff between
	// failed connects. Defaults 250ms and 30s. Wait n is drawn at random
	// from [c/2, c) with c = min(MaxBackoff, MinBackoff·2^(n-1)). The count
	// n starts again only after a connection that stayed open 5s: one that
	// a server closes or drops sooner, for whatever reason, is a failure
	// too. So whatever a server does, the client connects at most 5 times
	// in the first second and then ever more slowly, down to one connect
	// per MaxBackoff/2 or more (with the defaults, 11 in the first minute:
	// at 0, 0, 0.125, 0.375, 0.875, 1.875, 3.875, 7.875, 15.875, 30.875,
	// 45.875 seconds at the quickest), and fetches at most one token per
	// connect. Renewals are no more frequent than one per MinBackoff.
	// After an upgrade answered 429 or 503 with Retry-After, the wait is
	// at least the Retry-After and at most MaxBackoff (see the package
	// documentation).
	MinBackoff, MaxBackoff time.Duration
	// QueueSize bounds the messages waiting to be sent, and separately
	// those sent on a connection and not yet confirmed (see PingInterval).
	// Default 1024.
	QueueSize int
	// PingInterval is how often the client checks that the connection is
	// alive, with a WebSocket ping (RFC 6455 §5.5.2, answered by any
	// server that reads the connection); PingTimeout is how long it waits
	// for the pong, and for the answer to an in-band renewal, before it
	// takes the path as dead. Defaults DefaultPingInterval and
	// DefaultPingTimeout, so a dead path is noticed within 35s. The connection is then closed at once, without
	// a close handshake, OnDisconnect gets an error for which
	// errors.Is(err, ErrDeadConnection) holds, and the client reconnects
	// with a token from the Source, with the usual backoff.
	//
	// A message sent counts as delivered once the server answered a ping
	// sent after it, or the connection's close handshake completed; until
	// then it is kept, and when its connection is lost the messages kept
	// reach OnDisconnect in an *UndeliveredError (see there). When
	// QueueSize messages await confirmation, a ping goes out at once (at
	// half of it, already) and sending waits for the pong, so Write queues
	// and then returns ErrQueueFull rather than dropping anything.
	//
	// A negative PingInterval turns the check off, with its costs: a dead
	// path is noticed only when the kernel gives up on it (minutes to
	// hours, or never for a connection that only receives), Write goes on
	// returning nil meanwhile, and messages lost with a connection are not
	// reported.
	PingInterval, PingTimeout time.Duration
	// Renewal chooses how the token is renewed before it expires. Default
	// RenewAuto.
	Renewal Renewal

	// OnConnect runs on every new connection, before queued messages are
	// sent on it; send writes straight to that connection, so this is the
	// place to (re-)subscribe. An error drops the connection.
	OnConnect func(ctx context.Context, send func(ctx context.Context, typ websocket.MessageType, data []byte) error) error
	// OnDisconnect reports each failed or lost connection and why: with
	// ErrDeadConnection (errors.Is) for a path given up as dead, and
	// inside an *UndeliveredError (errors.As) when messages sent on the
	// connection were not confirmed; see PingInterval.
	OnDisconnect func(err error)
	// OnReconnecting reports each wait before a new attempt, and how long
	// it is.
	OnReconnecting func(attempt int, wait time.Duration)
	// OnRenewed reports each renewal: accepted in band, or a connection
	// replaced by make before break.
	OnRenewed func()
	// OnMessage, when set, receives every message from the server instead
	// of Read, on the goroutine that reads the connection: it saves a
	// goroutine hand-off per message, and must return quickly, since
	// control messages wait behind it.
	OnMessage func(typ websocket.MessageType, data []byte)

	// Logger receives warnings (a refused renewal, say). Default: discard.
	Logger *slog.Logger

	after      func(d time.Duration) <-chan time.Time // tests replace it
	renewAfter func(d time.Duration) <-chan time.Time
	jitter     func(n int64) int64
	now        func() time.Time
}

// QueryToken returns an Options.Authorize that puts the token in the query
// parameter name, for servers that read it there.
func QueryToken(name string) func(u *url.URL, h http.Header, token string) {
	return func(u *url.URL, _ http.Header, token string) {
		q := u.Query()
		q.Set(name, token)
		u.RawQuery = q.Encode()
	}
}

// Conn is a WebSocket connection that keeps itself connected with fresh
// tokens from a refresh.Source. Write queues messages while disconnected
// and sends them, in order, after the reconnect. All methods are safe for
// concurrent use.
type Conn struct {
	url *url.URL
	src *refresh.Source
	o   Options

	wmu sync.Mutex // serialises every write to the current connection

	mu     sync.Mutex
	cur    *link         // the connection writes may go straight to; nil while there is none
	queue  []message     // messages waiting; queue[0] is next
	wake   chan struct{} // signals the writer that the queue grew
	closed bool
	err    error // why the Conn ended

	in     chan message
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

type message struct {
	typ  websocket.MessageType
	data []byte
}

// Dial connects to rawURL with a token from src and keeps the connection up
// until Close or a terminal token failure (refresh.ErrReauthRequired). It
// returns once the first connection is up, or with the error that stopped
// it.
func Dial(ctx context.Context, rawURL string, src *refresh.Source, opts *Options) (*Conn, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if len(o.ExpiredCodes) == 0 {
		o.ExpiredCodes = []websocket.StatusCode{websocket.StatusPolicyViolation, CloseTokenExpired}
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 250 * time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(30*time.Second, o.MinBackoff)
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 1024
	}
	if o.PingInterval == 0 {
		o.PingInterval = DefaultPingInterval
	}
	if o.PingTimeout <= 0 {
		o.PingTimeout = DefaultPingTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.after == nil {
		o.after = time.After
	}
	if o.renewAfter == nil {
		o.renewAfter = time.After
	}
	if o.jitter == nil {
		o.jitter = rand.Int64N
	}
	if o.now == nil {
		o.now = time.Now
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("wsconn: %w", err)
	}
	c := &Conn{url: u, src: src, o: o, wake: make(chan struct{}, 1), in: make(chan message, 64), done: make(chan struct{})}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	first := make(chan error, 1)
	go c.run(first)
	select {
	case err := <-first:
		if err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	case <-ctx.Done():
		c.Close()
		return nil, ctx.Err()
	}
}

// Write sends a message on the current connection or, while there is none
// or earlier messages are still waiting, queues it to be sent, in order,
// after the reconnect. It returns ErrQueueFull when the queue is full. A
// message whose write fails is queued again, never dropped; one written
// and lost with its connection before the server confirmed it is reported
// to Options.OnDisconnect (see UndeliveredError).
//
// If ctx ends while the message is being written, the connection drops
// (coder/websocket cannot abandon a frame half-written) and the message is
// sent again after the reconnect; a ctx that has already ended is returned
// as an error and touches nothing.
func (c *Conn) Write(ctx context.Context, typ websocket.MessageType, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	switch {
	case c.closed:
		defer c.mu.Unlock()
		return c.endErr()
	case len(c.queue) == 0 && c.cur != nil && c.roomLocked(c.cur):
		l := c.cur
		c.mu.Unlock()
		c.wmu.Lock()
		err := l.ws.Write(ctx, typ, data)
		if err == nil {
			c.sent(l, message{typ, data}) // under wmu: in the order sent
		}
		c.wmu.Unlock()
		if err == nil {
			return nil
		}
		// Not sent: first in line for the next connection.
		c.mu.Lock()
		c.queue = slices.Insert(c.queue, 0, message{typ, slices.Clone(data)})
		c.mu.Unlock()
		return nil
	case len(c.queue) >= c.o.QueueSize:
		c.mu.Unlock()
		return ErrQueueFull
	}
	defer c.mu.Unlock()
	c.queue = append(c.queue, message{typ, slices.Clone(data)})
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return nil
}

// Read returns the next message from the server, whichever connection it
// arrived on. Protocol messages never reach it. It returns ErrOnMessage when
// Options.OnMessage is set.
func (c *Conn) Read(ctx context.Context) (websocket.MessageType, []byte, error) {
	if c.o.OnMessage != nil {
		return 0, nil, ErrOnMessage
	}
	select {
	case m := <-c.in:
		return m.typ, m.data, nil
	case <-c.done:
		c.mu.Lock()
		defer c.mu.Unlock()
		return 0, nil, c.endErr()
	case <-ctx.Done():
		return 0, nil, ctx.Err()
	}
}

// Close ends the connection, stops reconnecting and returns once every
// goroutine of the Conn has.
func (c *Conn) Close() error {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		if c.err == nil {
			c.err = ErrClosed
		}
	}
	c.mu.Unlock()
	c.cancel()
	<-c.done
	return nil
}

// Err returns why the Conn ended, or nil while it runs.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *Conn) endErr() error {
	if c.err != nil {
		return c.err
	}
	return ErrClosed
}

// retire stops direct writes to l, if they still go to it.
func (c *Conn) retire(l *link) {
	c.mu.Lock()
	if c.cur == l {
		c.cur = nil
	}
	c.mu.Unlock()
}

// setCurrent makes l the connection Write may write to directly (nil:
// none).
func (c *Conn) setCurrent(l *link) {
	c.mu.Lock()
	c.cur = l
	c.mu.Unlock()
}
