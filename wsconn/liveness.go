package wsconn

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// ErrDeadConnection is what OnDisconnect's error holds (errors.Is) when a
// connection was given up as dead: no pong came within Options.PingTimeout
// of a ping, or no answer to an in-band renewal within it. The path
// delivered nothing for that long without being closed, as when a NAT has
// forgotten the flow or a middlebox hangs.
var ErrDeadConnection = errors.New("wsconn: connection dead")

// Message is one message written with Conn.Write.
type Message struct {
	Type websocket.MessageType // text or binary
	Data []byte                // the message's bytes, a copy of those given to Write
}

// UndeliveredError is the error given to Options.OnDisconnect when a
// connection was lost (dead, dropped, or closed by the server) with
// messages sent on it that the server had not confirmed: Messages holds
// them, in the order written, and Err why the connection ended
// (errors.Is(err, ErrDeadConnection) looks through it).
//
// A message counts as delivered once the server answered a ping sent after
// it (it read the connection in order), or the connection's close
// handshake completed. An unconfirmed message may or may not have reached
// the server: on a path dead in one direction only it may have; it is not
// sent again, since that could deliver it twice. The application decides:
// write them again for at-least-once delivery (they are then sent on the
// new connection, before what is written after), or give up on them.
//
// The messages ride on OnDisconnect's error rather than a callback of their
// own, so that one event has one report: the application learns in the
// same call that the connection is gone and what it may have lost.
// Without OnDisconnect they are lost unreported. Messages still queued,
// never sent, are not in it: they go out on the next connection.
type UndeliveredError struct {
	Messages []Message // sent and not confirmed, in the order written
	Err      error     // why the connection ended
}

// Error counts the messages and gives Err's text; it holds no message data.
func (e *UndeliveredError) Error() string {
	return fmt.Sprintf("wsconn: %d messages sent and not confirmed: %v", len(e.Messages), e.Err)
}

// Unwrap returns Err.
func (e *UndeliveredError) Unwrap() error { return e.Err }

// liveness is a link's pinger state and the messages sent on it not yet
// confirmed. sent and nsent are guarded by Conn.mu.
type liveness struct {
	track    bool          // pings are on: keep and confirm what is sent
	sent     []message     // sent on the link, not yet confirmed, in order
	nsent    int64         // messages ever sent on the link
	dead     chan error    // the path was found dead
	pingNow  chan struct{} // asks for a ping now: many messages await confirmation
	progress chan struct{} // some were confirmed
	renewAck chan struct{} // the server answered a renewal
	pingDone chan struct{}
	appBusy  atomic.Bool // the reader is handing a message to the application
}

// roomLocked reports whether l may take one more message to confirm; c.mu
// is held.
func (c *Conn) roomLocked(l *link) bool { return !l.track || len(l.sent) < c.o.QueueSize }

func (c *Conn) room(l *link) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.roomLocked(l)
}

// sent records m as sent on l, in the order of sending (wmu is held).
func (c *Conn) sent(l *link, m message) {
	c.mu.Lock()
	c.sentLocked(l, m)
	c.mu.Unlock()
}

func (c *Conn) sentLocked(l *link, m message) {
	if !l.track {
		return
	}
	l.sent = append(l.sent, message{m.typ, slices.Clone(m.data)})
	l.nsent++
	if len(l.sent) >= max(c.o.QueueSize/2, 1) {
		select {
		case l.pingNow <- struct{}{}:
		default:
		}
	}
}

// confirmLocked forgets the messages among the first upTo sent on l.
func (c *Conn) confirmLocked(l *link, upTo int64) {
	k := len(l.sent) - int(l.nsent-upTo)
	if k <= 0 {
		return
	}
	clear(l.sent[:k])
	l.sent = l.sent[k:]
	select {
	case l.progress <- struct{}{}:
	default:
	}
}

// undelivered returns err holding the messages sent on l and not
// confirmed, or err itself when there are none; nil when there are none
// and err is nil.
func (c *Conn) undelivered(l *link, err error) error {
	c.mu.Lock()
	sent := l.sent
	l.sent = nil
	c.mu.Unlock()
	if len(sent) == 0 {
		return err
	}
	if err == nil {
		err = errors.New("wsconn: the close handshake of a replaced connection failed")
	}
	msgs := make([]Message, len(sent))
	for i, m := range sent {
		msgs[i] = Message{Type: m.typ, Data: m.data}
	}
	return &UndeliveredError{Messages: msgs, Err: err}
}

// declareDead ends l as dead with err.
func (c *Conn) declareDead(l *link, err error) {
	select {
	case l.dead <- err:
	default:
	}
}

// pinger pings l every PingInterval after the last pong, and sooner when
// many messages await confirmation; a pong confirms every message sent
// before its ping. No pong within PingTimeout ends l as dead, unless the
// application was holding the reader then (pongs are read by it): then
// it pings again.
func (c *Conn) pinger(l *link) {
	defer close(l.pingDone)
	t := time.NewTimer(c.o.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-l.pingNow:
		case <-l.ctx.Done():
			return
		}
		for {
			c.mu.Lock()
			upTo := l.nsent
			c.mu.Unlock()
			ctx, cancel := context.WithTimeout(l.ctx, c.o.PingTimeout)
			err := l.ws.Ping(ctx)
			cancel()
			if err == nil {
				c.mu.Lock()
				c.confirmLocked(l, upTo)
				c.mu.Unlock()
				break
			}
			if l.ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
				return // the link ends for another reason, reported by its reader or writer
			}
			if !l.appBusy.Load() {
				c.declareDead(l, fmt.Errorf("%w: no pong within %v", ErrDeadConnection, c.o.PingTimeout))
				return
			}
		}
		t.Reset(c.o.PingInterval)
	}
}

// awaitRenewed waits for the server to answer the renewal just sent on l,
// for at most PingTimeout (while the application is not holding the
// reader), and otherwise ends l as dead. It reports whether the answer
// came.
func (c *Conn) awaitRenewed(l *link) bool {
	if !l.track {
		return true
	}
	t := time.NewTimer(c.o.PingTimeout)
	defer t.Stop()
	for {
		select {
		case <-l.renewAck:
			return true
		case <-l.ctx.Done():
			return false
		case <-t.C:
			if l.appBusy.Load() {
				t.Reset(c.o.PingTimeout)
				continue
			}
			c.declareDead(l, fmt.Errorf("%w: no answer to the token renewal within %v", ErrDeadConnection, c.o.PingTimeout))
			return false
		}
	}
}
