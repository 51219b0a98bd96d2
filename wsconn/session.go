package wsconn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/oauth2"

	"github.com/tokend/tokend/internal/oauth"
	"github.com/tokend/tokend/refresh"
)

// healthyAfter is how long a connection must stay open to count as
// healthy. Only a healthy connection resets the failure count and re-arms
// the immediate retry after a refused or expired token: a server that
// accepts and closes at once (whatever the close code, or a dropped
// socket, or an expiry notice) goes on counting as failing, so the waits
// keep growing. A message both ways is not taken as proof, since a server
// can answer one and close as quickly.
const healthyAfter = 5 * time.Second

// run connects and reconnects until Close or a terminal failure.
func (c *Conn) run(first chan<- error) {
	defer close(c.done)
	authRetried := false // an auth failure was already answered with an immediate retry
	failures := 0        // failed connects since the last healthy connection
	for c.ctx.Err() == nil {
		tok, err := c.src.FreshToken(c.ctx)
		if errors.Is(err, refresh.ErrReauthRequired) {
			c.end(err, first)
			return
		}
		var cause error
		authFailure := false
		retryAfter := time.Duration(0) // asked for by a refused upgrade
		if err == nil {
			var connected bool
			var up time.Duration
			connected, up, authFailure, cause = c.session(tok, first)
			if connected {
				first = nil // session answered it
				if up >= healthyAfter {
					failures, authRetried = 0, false
				}
			} else if refused := (*refresh.OAuthError)(nil); errors.As(cause, &refused) && refused.Throttled() {
				retryAfter = refused.RetryAfter
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
		wait := c.backoff(failures)
		if retryAfter > wait {
			// The upgrade was answered 429 or 503 with Retry-After.
			wait = min(retryAfter, c.o.MaxBackoff)
		}
		if c.o.OnReconnecting != nil {
			c.o.OnReconnecting(failures, wait)
		}
		select {
		case <-c.o.after(wait):
		case <-c.ctx.Done():
		}
	}
	c.end(ErrClosed, first)
}

// backoff returns the wait before reconnect attempt n (n ≥ 1): equal
// jitter, a uniform random duration in [ceiling/2, ceiling), over the
// ceiling min(MaxBackoff, MinBackoff·2^(n-1)). The lower half bound is what
// caps the rate of connects whatever the server does; full jitter could
// draw waits near zero time after time.
func (c *Conn) backoff(n int) time.Duration {
	ceiling := c.o.MaxBackoff
	if n < 62 {
		if x := float64(c.o.MinBackoff) * math.Exp2(float64(n-1)); x < float64(ceiling) {
			ceiling = time.Duration(x)
		}
	}
	half := ceiling / 2
	return half + time.Duration(c.o.jitter(int64(ceiling-half)))
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

// link is one underlying connection and the goroutines that serve it.
type link struct {
	ws     *websocket.Conn
	tok    *oauth2.Token
	inBand bool      // renew in band on this connection
	opened time.Time // when the upgrade succeeded, before OnConnect

	ctx       context.Context
	cancel    context.CancelFunc
	stop      chan struct{} // asks the writer to stop after the message in flight
	werr      chan error    // the writer's end
	rerr      chan error    // the reader's end
	renewDone chan struct{}

	liveness // the pinger's state, and the messages not yet confirmed
}

// connect dials with tok and runs OnConnect on the new connection. It
// reports whether a failure was the server refusing the token.
func (c *Conn) connect(ctx context.Context, tok *oauth2.Token) (l *link, authFailure bool, err error) {
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
	ws, resp, err := websocket.Dial(ctx, u.String(), &opts)
	if err != nil {
		auth := resp != nil && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden)
		// The error names the URL, which may carry the token.
		err = redact(err, tok.AccessToken)
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			err = refusal(resp, c.o.now(), err)
		}
		return nil, auth, fmt.Errorf("wsconn: dial %s%s: %w", c.url.Host, c.url.Path, err)
	}
	l = &link{ws: ws, tok: tok, opened: c.o.now()}
	switch c.o.Renewal {
	case RenewInBand:
		l.inBand = true
	case RenewAuto:
		l.inBand = resp.Header.Get(RenewalHeader) == RenewalInBand
	}
	if c.o.OnConnect != nil {
		if err := c.o.OnConnect(ctx, ws.Write); err != nil {
			_ = ws.CloseNow()
			return nil, false, fmt.Errorf("wsconn: OnConnect: %w", err)
		}
	}
	return l, false, nil
}

// session runs one connection, and those that replace it by make before
// break, until it ends. It reports whether a connection came up, how long
// it stayed up, whether it ended for the token, and why it ended.
func (c *Conn) session(tok *oauth2.Token, first chan<- error) (connected bool, up time.Duration, authFailure bool, cause error) {
	l, auth, err := c.connect(c.ctx, tok)
	if err != nil {
		return false, 0, auth, err
	}
	start := l.opened
	replace := make(chan *link)
	for {
		c.start(l, replace)
		if first != nil {
			first <- nil // Dial returns: writes go straight to l
			first = nil
		}
		var err error
		select {
		case err = <-l.rerr:
			if errors.Is(err, errExpiring) || errors.Is(err, errRenewRefused) {
				// Replaced by a connection opened with the Source's current
				// token: at once, unless a token failure was already
				// answered so since the last healthy connection (run).
				reason := "token expired; reconnecting"
				if errors.Is(err, errRenewRefused) {
					reason = "token renewal refused; reconnecting"
				}
				c.handOver(l, CloseTokenExpired, reason, false)
				return true, c.o.now().Sub(start), true, c.undelivered(l, err)
			}
			l.cancel()
			<-l.werr
		case err = <-l.werr:
			l.cancel()
			<-l.rerr
		case err = <-l.dead:
			// No close handshake: it could never complete.
			c.retire(l)
			_ = l.ws.CloseNow()
			l.cancel()
			<-l.werr
			<-l.rerr
		case next := <-replace:
			c.handOver(l, websocket.StatusNormalClosure, "token renewed; replaced", true)
			if lost := c.undelivered(l, nil); lost != nil && c.o.OnDisconnect != nil {
				c.o.OnDisconnect(lost)
			}
			l = next
			if c.o.OnRenewed != nil {
				c.o.OnRenewed()
			}
			continue
		}
		<-l.renewDone
		<-l.pingDone
		select {
		case dead := <-l.dead: // the path was dead, whatever else failed with it
			err = dead
		default:
		}
		_ = l.ws.CloseNow()
		up := c.o.now().Sub(start)
		code := websocket.CloseStatus(err)
		if slices.Contains(c.o.ExpiredCodes, code) {
			return true, up, true, c.undelivered(l, fmt.Errorf("wsconn: closed for the token (%d): %w", code, err))
		}
		if code == websocket.StatusNormalClosure && c.ctx.Err() != nil {
			return true, up, false, nil
		}
		if !errors.Is(err, ErrDeadConnection) {
			err = fmt.Errorf("wsconn: connection lost: %w", err)
		}
		return true, up, false, c.undelivered(l, err)
	}
}

// start runs the writer, the reader and the renewer of l, and lets Write
// write to it.
func (c *Conn) start(l *link, replace chan<- *link) {
	l.ctx, l.cancel = context.WithCancel(c.ctx)
	l.stop = make(chan struct{})
	l.werr, l.rerr, l.renewDone = make(chan error, 1), make(chan error, 1), make(chan struct{})
	l.liveness = liveness{
		track:    c.o.PingInterval >= 0,
		dead:     make(chan error, 1),
		pingNow:  make(chan struct{}, 1),
		progress: make(chan struct{}, 1),
		renewAck: make(chan struct{}, 1),
		pingDone: make(chan struct{}),
	}
	go func() { l.werr <- c.writer(l) }()
	go func() { l.rerr <- c.reader(l) }()
	if c.o.Renewal == RenewOff {
		close(l.renewDone)
	} else {
		go c.renew(l, replace)
	}
	if l.track {
		go c.pinger(l)
	} else {
		close(l.pingDone)
	}
	c.setCurrent(l)
}

// handOver ends l without losing a message written to the Conn: sending
// stops after the message in flight, then l is closed with code, which the
// server reads after everything sent before it. With keepReading, l's
// reader goes on delivering until the close handshake ends. A completed
// close handshake confirms every message sent on l.
func (c *Conn) handOver(l *link, code websocket.StatusCode, reason string, keepReading bool) {
	c.setCurrent(nil) // no more direct writes
	close(l.stop)
	<-l.werr
	// Under wmu: a direct write that started before setCurrent either lands
	// before the close or fails and is queued again.
	c.wmu.Lock()
	err := l.ws.Close(code, reason)
	c.wmu.Unlock()
	l.cancel()
	if keepReading {
		<-l.rerr
	}
	<-l.renewDone
	<-l.pingDone
	if err == nil {
		c.mu.Lock()
		c.confirmLocked(l, l.nsent)
		c.mu.Unlock()
	}
}

// writer sends queued messages in order. A message leaves the queue only
// once written, so one that fails is sent again after the reconnect.
func (c *Conn) writer(l *link) error {
	for {
		select {
		case <-l.stop:
			return nil
		default:
		}
		c.mu.Lock()
		var m message
		ok := len(c.queue) > 0
		if ok {
			m = c.queue[0]
		}
		c.mu.Unlock()
		if !ok {
			select {
			case <-c.wake:
				continue
			case <-l.stop:
				return nil
			case <-l.ctx.Done():
				return l.ctx.Err()
			}
		}
		if !c.room(l) {
			// Too many messages await confirmation: wait for the pong
			// rather than keep more.
			select {
			case <-l.progress:
				continue
			case <-l.stop:
				return nil
			case <-l.ctx.Done():
				return l.ctx.Err()
			}
		}
		c.wmu.Lock()
		err := l.ws.Write(l.ctx, m.typ, m.data)
		if err == nil {
			c.mu.Lock()
			c.queue[0] = message{}
			c.queue = c.queue[1:]
			c.sentLocked(l, m)
			c.mu.Unlock()
		}
		c.wmu.Unlock()
		if err != nil {
			c.retire(l)
			return err
		}
	}
}

// reader delivers the server's messages to Read or OnMessage and acts on
// control messages.
func (c *Conn) reader(l *link) error {
	for {
		typ, data, err := l.ws.Read(l.ctx)
		if err != nil {
			c.retire(l) // at once: a write now would be lost
			return err
		}
		if ctl, ok := parseControl(typ, data); ok {
			switch ctl.Type {
			case TypeExpiring:
				return errExpiring
			case TypeRenewed:
				select {
				case l.renewAck <- struct{}{}:
				default:
				}
				if c.o.OnRenewed != nil {
					c.o.OnRenewed()
				}
			case TypeRenewFailed:
				c.o.Logger.WarnContext(l.ctx, "wsconn: the server refused the renewed token; reconnecting with it", "reason", ctl.Error)
				return fmt.Errorf("%w: %w", errRenewRefused, &refresh.OAuthError{Code: oauth.InvalidToken, Description: ctl.Error})
			}
			continue
		}
		// While the application holds the reader, pongs wait unread: the
		// pinger then does not take their absence as a dead path.
		l.appBusy.Store(true)
		if c.o.OnMessage != nil {
			c.o.OnMessage(typ, data)
			l.appBusy.Store(false)
			continue
		}
		select {
		case c.in <- message{typ: typ, data: data}:
			l.appBusy.Store(false)
		case <-l.ctx.Done():
			return l.ctx.Err()
		}
	}
}

// renewFraction is how far into the remaining life of the connection's
// token it is renewed: after the Source's own proactive refresh (at 80% of
// a lifetime by default), well before expiry. A further second is taken
// off because a JWT's exp has whole seconds, so the server's idea of the
// expiry can be up to a second earlier than the client's.
const renewFraction = 0.9

// renew renews l's token before it expires: in band, again for every
// token, or by dialling a replacement and handing it to the session.
func (c *Conn) renew(l *link, replace chan<- *link) {
	defer close(l.renewDone)
	tok := l.tok
	for !tok.Expiry.IsZero() {
		// Never sooner than MinBackoff: with tokens that live about a
		// second, renewing "at once" would dial or send without pause.
		wait := time.Duration(float64(time.Until(tok.Expiry))*renewFraction) - time.Second
		select {
		case <-c.o.renewAfter(max(wait, c.o.MinBackoff)):
		case <-l.ctx.Done():
			return
		}
		fresh, err := c.src.FreshToken(l.ctx)
		if err == nil && fresh.AccessToken == tok.AccessToken {
			// The Source has not refreshed yet (its refresh may be
			// failing): ask for one.
			c.src.Invalidate(tok)
			fresh, err = c.src.FreshToken(l.ctx)
		}
		if err != nil || !fresh.Expiry.After(tok.Expiry) {
			// Nothing better to renew with: the expiry notice or close
			// will replace the connection.
			if err == nil {
				c.o.Logger.WarnContext(l.ctx, "wsconn: the refreshed token expires no later; not renewing")
			}
			return
		}
		if !l.inBand {
			next, _, err := c.connect(l.ctx, fresh)
			if err != nil {
				c.o.Logger.WarnContext(l.ctx, "wsconn: make-before-break renewal failed; reconnecting at expiry", "err", err)
				return
			}
			select {
			case replace <- next:
			case <-l.ctx.Done():
				_ = next.ws.CloseNow()
			}
			return
		}
		msg, _ := json.Marshal(Control{Type: TypeRenew, Token: fresh.AccessToken})
		c.wmu.Lock()
		err = l.ws.Write(l.ctx, websocket.MessageText, msg)
		c.wmu.Unlock()
		if err != nil || !c.awaitRenewed(l) {
			return
		}
		tok = fresh
	}
}
