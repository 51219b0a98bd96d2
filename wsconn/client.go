package wsconn

import (
	"context"
	"encoding/json"
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
	"github.com/tokend/tokend/internal/backoff"
	"github.com/tokend/tokend/refresh"
	"golang.org/x/oauth2"
)

// Errors returned by a client Conn.
var (
	// ErrQueueFull is returned by Write when Options.QueueSize messages are
	// already waiting to be sent.
	ErrQueueFull = errors.New("wsconn: send queue full")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("wsconn: connection closed")

	errExpiring = errors.New("wsconn: the server says the token is expiring")
)

// Options configures a client Conn. The zero value is usable.
type Options struct {
	// Dial is passed to websocket.Dial; its HTTPHeader is copied, never
	// modified.
	Dial *websocket.DialOptions
	// Authorize puts the token on each (re)connect's request, editing a copy
	// of the URL and of the headers. Default: the Authorization header,
	// "Bearer <token>".
	Authorize func(u *url.URL, h http.Header, token string)
	// ExpiredCodes are the close codes that mean "your token expired":
	// the token is invalidated and the client reconnects at once with a
	// fresh one. Default 1008 (policy violation) and CloseTokenExpired.
	ExpiredCodes []websocket.StatusCode
	// MinBackoff and MaxBackoff bound the exponential backoff, with full
	// jitter, between failed connects. Defaults 250ms and 30s.
	MinBackoff, MaxBackoff time.Duration
	// QueueSize bounds the messages waiting to be sent. Default 1024.
	QueueSize int
	// OnConnect runs on every (re)connect before queued messages are sent;
	// send writes straight to the new connection (re-subscribe here).
	OnConnect func(ctx context.Context, send func(ctx context.Context, typ websocket.MessageType, data []byte) error) error
	// OnDisconnect reports each failed or lost connection and why.
	OnDisconnect func(err error)
	// OnReconnect reports each wait before a new attempt.
	OnReconnect func(attempt int, wait time.Duration)
	// OnRenewed reports each in-band renewal the server accepted.
	OnRenewed func()
	// NoRenew turns off the in-band renewal: the connection is then
	// replaced, without losing messages, when the server says the token is
	// expiring.
	NoRenew bool
	Logger  *slog.Logger

	after      func(d time.Duration) <-chan time.Time // tests replace it
	renewAfter func(d time.Duration) <-chan time.Time
	jitter     func(n int64) int64
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
	cur    *websocket.Conn // the connection writes may go straight to; nil while there is none
	queue  [][]byte        // messages waiting; queue[0] is next
	types  []websocket.MessageType
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
// message whose write fails is queued again, never dropped.
func (c *Conn) Write(ctx context.Context, typ websocket.MessageType, data []byte) error {
	c.mu.Lock()
	switch {
	case c.closed:
		defer c.mu.Unlock()
		return c.endErr()
	case len(c.queue) == 0 && c.cur != nil:
		ws := c.cur
		c.mu.Unlock()
		c.wmu.Lock()
		err := ws.Write(ctx, typ, data)
		c.wmu.Unlock()
		if err == nil {
			return nil
		}
		c.mu.Lock()
		c.queue = append([][]byte{slices.Clone(data)}, c.queue...)
		c.types = append([]websocket.MessageType{typ}, c.types...)
		c.mu.Unlock()
		return nil
	case len(c.queue) >= c.o.QueueSize:
		c.mu.Unlock()
		return ErrQueueFull
	}
	defer c.mu.Unlock()
	c.queue = append(c.queue, slices.Clone(data))
	c.types = append(c.types, typ)
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return nil
}

// setCurrent makes ws the connection Write may write to directly (nil:
// none).
func (c *Conn) setCurrent(ws *websocket.Conn) {
	c.mu.Lock()
	c.cur = ws
	c.mu.Unlock()
}

// Read returns the next message from the server, whichever connection it
// arrived on. Protocol messages never reach it.
func (c *Conn) Read(ctx context.Context) (websocket.MessageType, []byte, error) {
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

// Close ends the connection and stops reconnecting.
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

func (c *Conn) endErr() error {
	if c.err != nil {
		return c.err
	}
	return ErrClosed
}

// run connects and reconnects until Close or a terminal failure.
func (c *Conn) run(first chan<- error) {
	defer close(c.done)
	authRetried := false // an auth failure was already answered with an immediate retry
	failures := 0
	for c.ctx.Err() == nil {
		tok, err := c.src.FreshToken(c.ctx)
		if errors.Is(err, refresh.ErrReauthRequired) {
			c.end(err, first)
			return
		}
		var cause error
		authFailure := false
		if err == nil {
			var connected bool
			connected, authFailure, cause = c.session(tok, first)
			if connected {
				first = nil // session answered it
				failures, authRetried = 0, false
			}
		} else {
			cause = err
		}
		if c.ctx.Err() != nil {
			break
		}
		if c.o.OnDisconnect != nil && cause != nil {
			c.o.OnDisconnect(cause)
		}
		if authFailure {
			c.src.Invalidate(tok)
			if !authRetried {
				authRetried = true
				continue // at once, with a fresh token
			}
		}
		failures++
		wait := backoff.Full(failures, c.o.MinBackoff, c.o.MaxBackoff, c.o.jitter)
		if c.o.OnReconnect != nil {
			c.o.OnReconnect(failures, wait)
		}
		select {
		case <-c.o.after(wait):
		case <-c.ctx.Done():
		}
	}
	c.end(ErrClosed, first)
}

func (c *Conn) end(err error, first chan<- error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.closed = true
	c.mu.Unlock()
	if first != nil {
		first <- err
	}
}

// session runs one connection until it ends. It reports whether the
// connection came up, whether it ended for the token, and why it ended.
func (c *Conn) session(tok *oauth2.Token, first chan<- error) (connected, authFailure bool, cause error) {
	opts := websocket.DialOptions{}
	if c.o.Dial != nil {
		opts = *c.o.Dial
	}
	opts.HTTPHeader = opts.HTTPHeader.Clone()
	if opts.HTTPHeader == nil {
		opts.HTTPHeader = http.Header{}
	}
	u := *c.url
	if c.o.Authorize != nil {
		c.o.Authorize(&u, opts.HTTPHeader, tok.AccessToken)
	} else {
		opts.HTTPHeader.Set("Authorization", "Bearer "+tok.AccessToken)
	}
	ws, resp, err := websocket.Dial(c.ctx, u.String(), &opts)
	if err != nil {
		auth := resp != nil && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden)
		return false, auth, fmt.Errorf("wsconn: dial: %w", err)
	}
	defer ws.CloseNow()
	ctx, cancel := context.WithCancel(c.ctx)
	defer cancel()
	if c.o.OnConnect != nil {
		if err := c.o.OnConnect(ctx, ws.Write); err != nil {
			return true, false, fmt.Errorf("wsconn: OnConnect: %w", err)
		}
	}
	if first != nil {
		first <- nil
	}
	stop := make(chan struct{})
	werr, rerr := make(chan error, 1), make(chan error, 1)
	go func() { werr <- c.writer(ctx, ws, stop) }()
	go func() { rerr <- c.reader(ctx, ws) }()
	c.setCurrent(ws)
	defer c.setCurrent(nil)
	if !c.o.NoRenew {
		go c.renew(ctx, ws, tok)
	}
	select {
	case err = <-rerr:
		if errors.Is(err, errExpiring) {
			// Lossless hand-over: finish the message in flight, send
			// nothing more, and close; the server reads everything up to
			// the close.
			c.setCurrent(nil) // no more direct writes
			close(stop)
			<-werr
			// Under wmu: a direct write that started before setCurrent
			// either lands before the close or fails and is queued again.
			c.wmu.Lock()
			_ = ws.Close(CloseTokenExpired, "token expired; reconnecting")
			c.wmu.Unlock()
			return true, true, err
		}
		cancel()
		<-werr
	case err = <-werr:
		cancel()
		<-rerr
	}
	code := websocket.CloseStatus(err)
	if slices.Contains(c.o.ExpiredCodes, code) {
		return true, true, fmt.Errorf("wsconn: closed for the token (%d): %w", code, err)
	}
	if code == websocket.StatusNormalClosure && c.ctx.Err() != nil {
		return true, false, nil
	}
	return true, false, fmt.Errorf("wsconn: connection lost: %w", err)
}

// writer sends queued messages in order. A message leaves the queue only
// once written, so one that fails is sent again after the reconnect.
func (c *Conn) writer(ctx context.Context, ws *websocket.Conn, stop <-chan struct{}) error {
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		c.mu.Lock()
		var m message
		ok := len(c.queue) > 0
		if ok {
			m = message{typ: c.types[0], data: c.queue[0]}
		}
		c.mu.Unlock()
		if !ok {
			select {
			case <-c.wake:
				continue
			case <-stop:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		c.wmu.Lock()
		err := ws.Write(ctx, m.typ, m.data)
		c.wmu.Unlock()
		if err != nil {
			return err
		}
		c.mu.Lock()
		c.queue, c.types = c.queue[1:], c.types[1:]
		c.mu.Unlock()
	}
}

// reader delivers the server's messages to Read.
func (c *Conn) reader(ctx context.Context, ws *websocket.Conn) error {
	for {
		typ, data, err := ws.Read(ctx)
		if err != nil {
			return err
		}
		if ctl, ok := parseControl(typ, data); ok {
			switch ctl.Type {
			case TypeExpiring:
				return errExpiring
			case TypeRenewed:
				if c.o.OnRenewed != nil {
					c.o.OnRenewed()
				}
			case TypeRenewFailed:
				c.o.Logger.WarnContext(ctx, "wsconn: the server refused the renewed token", "reason", ctl.Error)
			}
			continue
		}
		select {
		case c.in <- message{typ: typ, data: data}:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// renewFraction is how far into the remaining life of the connection's
// token it is renewed in band: after the Source's own proactive refresh
// (at 80% of a lifetime by default), well before expiry. A further second
// is taken off because a JWT's exp has whole seconds, so the server's idea
// of the expiry can be up to a second earlier than the client's.
const renewFraction = 0.9

// renew sends the Source's newer token over the open connection before the
// current one expires, again for every token, until ctx ends.
func (c *Conn) renew(ctx context.Context, ws *websocket.Conn, tok *oauth2.Token) {
	for !tok.Expiry.IsZero() {
		wait := time.Duration(float64(time.Until(tok.Expiry))*renewFraction) - time.Second
		select {
		case <-c.o.renewAfter(max(wait, 0)):
		case <-ctx.Done():
			return
		}
		fresh, err := c.src.FreshToken(ctx)
		if err == nil && fresh.AccessToken == tok.AccessToken {
			// The Source has not refreshed yet (its refresh may be
			// failing): ask for one.
			c.src.Invalidate(tok)
			fresh, err = c.src.FreshToken(ctx)
		}
		if err != nil {
			return // the expiry notice will hand the connection over
		}
		msg, _ := json.Marshal(Control{Type: TypeRenew, Token: fresh.AccessToken})
		if err := ws.Write(ctx, websocket.MessageText, msg); err != nil {
			return
		}
		tok = fresh
	}
}
