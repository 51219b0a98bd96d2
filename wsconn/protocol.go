// Package wsconn keeps WebSocket connections alive across access-token
// expiry, on both ends.
//
//	// Server: verify on upgrade, close when the token expires unrenewed.
//	http.Handle("/ws", &wsconn.Handler{Verifier: verify.New(issuer, nil),
//		Serve: func(ctx context.Context, c *wsconn.ServerConn) { /* c.Read, c.Write */ }})
//
//	// Client: stay connected with fresh tokens from a refresh.Source.
//	conn, err := wsconn.Dial(ctx, "wss://chat.example/ws", src, nil)
//	err = conn.Write(ctx, websocket.MessageText, []byte("hi"))
//
// The server side, Handler, verifies the token on upgrade, closes the
// connection with CloseTokenExpired when the token expires, and accepts an
// in-band renewal message that replaces the token without a reconnect. The
// client side, Dial, reconnects at once with a fresh token when the server
// refuses or closes for the token, reconnects with backoff and jitter after
// other failures, queues what is written meanwhile, and renews the token
// before it expires: in band where the server supports it, else by make
// before break.
//
// A dead socket costs a Dial client at most Options.PingInterval +
// Options.PingTimeout (35 s by default): however the path died (both ways,
// or one way only, without a close), the client notices within that time
// and reconnects with a fresh token from the Source, after the usual
// backoff (250 ms or less after a healthy connection). The messages written
// meanwhile are reported to Options.OnDisconnect in an *UndeliveredError,
// never dropped unreported (see Liveness and Delivery).
//
// # Protocol
//
// A client renews in band by sending a text message
//
//	{"type":"tokend.renew","token":"<new access token>"}
//
// The server answers {"type":"tokend.renewed","exp":<unix seconds>} when the
// new token is valid and keeps who the connection is (below), and otherwise
// {"type":"tokend.renew_failed","error":"<reason>"}, keeping the old token
// until it expires; the reason never echoes the token. A Dial client
// answers a refusal by replacing the connection at once with one opened
// with the Source's current token (it closes with CloseTokenExpired after
// the message in flight, so nothing is lost); a refusal again before a
// connection has stayed up 5 s backs off, as for any token failure.
//
// When a token expires unrenewed, the server sends {"type":"tokend.expiring"}
// and keeps reading: the client stops sending, closes with
// CloseTokenExpired, and reconnects with a fresh token, so no message
// written before the close is lost. A client that does not close within
// Handler.CloseGrace is closed by the server with CloseTokenExpired.
//
// A server that accepts in-band renewal says so in its upgrade response with
// the header "Tokend-Renewal: in-band" (Handler does). With other servers a
// client renews by make before break: it opens a second connection with the
// new token, moves sending to it, and closes the old one normally.
//
// # Refusals and Retry-After
//
// A refused upgrade, and an in-band renewal the server refuses, reach
// Options.OnDisconnect as an error holding a *refresh.OAuthError (get it
// with errors.As): for an upgrade, the HTTP status, the error code and
// description of its JSON body (RFC 6749 §5.2) or else of its Bearer
// challenge (RFC 6750 §3), and its Retry-After; for a renewal, the code
// invalid_token and the server's reason, with status 0. After an upgrade
// answered 429 or 503 with a Retry-After (delay-seconds, or an HTTP-date
// read against the answer's Date header, RFC 9110 §10.2.3), the next
// connect waits min(max(backoff, Retry-After), Options.MaxBackoff): never
// sooner than the server asked, never longer than the client's own cap.
// A Retry-After that cannot be read, or one on another status, is ignored.
//
// # Renewal keeps who the connection is
//
// A renewal extends a connection's life; it never changes whose
// connection it is. Handler accepts a new token only if, compared with the
// token the connection was opened with, it has:
//   - the same sub, client_id and sid. sid names the family: tokend puts in
//     sid the family a token was refreshed from, and a token without sid
//     renews only one without, and the reverse. So another user's token is
//     refused, and so are another client's token for the same user (even
//     one with a wider scope), a client_credentials token of a client
//     whose ID equals the user's name (client IDs and subjects share one
//     namespace, RFC 9068 §5), and a token of another family of the same
//     user and client;
//   - the same iss and aud;
//   - a scope within the opening token's. Narrower is accepted (a refresh
//     may narrow a scope, RFC 6749 §6), and so is the opening scope again
//     after a narrowing; any scope the connection was not opened with is
//     refused.
//
// A claim absent from one token and present in the other differs.
// ServerConn.Claims reports the current token, so after a narrowing it
// reports the narrower scope.
//
// # Browsers
//
// A page offers its access token as a subprotocol,
// new WebSocket(url, ["tokend", "tokend.bearer." + token]); Handler
// selects "tokend". A browser cannot read a refused upgrade, so Handler
// accepts a browser's upgrade (one with an Origin header) whose token is
// missing or invalid and closes it at once with CloseTokenExpired and the
// reason "invalid_token"; the page refreshes its token and reconnects.
// Pages of another origin than the server's need Handler.Accept's
// OriginPatterns. In-band renewal works as below.
//
// # Delivery
//
// A client Conn sends what the application writes in order, across
// reconnects and renewals. Where a connection is ended on purpose (for an
// expiry or a renewal), nothing is lost: sending stops after the message in
// flight and the close follows it. Where the network drops, a message whose
// write failed is sent again on the next connection. A message the kernel
// had already accepted counts as delivered only once the server has
// answered a ping sent after it (or the close handshake completed); when a
// connection is lost (dead, dropped or closed by the server) with messages
// not yet confirmed, Options.OnDisconnect gets them, in order, in an
// *UndeliveredError. They may have arrived (a path dead only towards the
// client delivers them), so they are not sent again on their own: the
// application writes them again for at-least-once delivery, or gives up on
// them. Close reports nothing. At most Options.QueueSize messages await
// confirmation per connection; past that Write queues, then returns
// ErrQueueFull. With PingInterval < 0 nothing is confirmed or reported, and
// a message the kernel had accepted can be lost with the connection
// unnoticed. Messages from the server that were in flight can be lost with
// a connection. While make before break overlaps two connections, a server
// that broadcasts may deliver a message on both.
//
// # Liveness
//
// A client checks that the path to the server still carries messages, since
// a path can die without a close (a NAT that forgot the flow, a hung
// middlebox), and then neither end hears of it. A client that can send
// WebSocket ping frames (RFC 6455 §5.5.2), as Dial does, uses them; any
// RFC 6455 server answers with a pong. A browser cannot send ping frames,
// so it sends the text message
//
//	{"type":"tokend.ping"}
//
// and Handler answers {"type":"tokend.pong"} after reading it. Handler reads
// a connection's messages in order, so a pong confirms that the server read
// everything the client sent before the ping. tokend.ping never reaches
// Serve. A client that hears no pong within its timeout takes the path as
// dead, closes the connection without waiting for a close handshake, and
// reconnects with a fresh token.
//
// Dial pings every Options.PingInterval (25 s) after the last pong, and
// waits Options.PingTimeout (10 s) for the answer to a ping or to an
// in-band renewal: a path that dies just after a pong is given up 35 s
// later, one that dies while a ping or renewal is out sooner.
// Options.OnDisconnect then gets an error for which errors.Is(err,
// ErrDeadConnection) holds. The reading goroutine is the one that
// sees pongs: while it waits on the application (Read not called, a slow
// OnMessage), a missing pong is not held against the path.
//
// Text messages whose type starts with "tokend." are reserved for this
// protocol and never reach the application.
package wsconn

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/coder/websocket"
)

// CloseTokenExpired is the close code sent when a connection's token has
// expired without renewal. Clients reconnect with a fresh token on it.
const CloseTokenExpired websocket.StatusCode = 4001

// RenewalHeader is the upgrade response header with which a server
// announces that it accepts in-band renewal (value RenewalInBand); Handler
// sets it, and a client with RenewAuto renews in band only where it is set.
const (
	RenewalHeader = "Tokend-Renewal"
	RenewalInBand = "in-band"
)

// Control message types, see the package documentation (Protocol,
// Liveness).
const (
	TypeRenew       = "tokend.renew"
	TypeRenewed     = "tokend.renewed"
	TypeRenewFailed = "tokend.renew_failed"
	TypeExpiring    = "tokend.expiring"
	TypePing        = "tokend.ping" // client to server: are you there?
	TypePong        = "tokend.pong" // server to client: read all before the ping
)

// Control is a protocol message.
type Control struct {
	Type  string `json:"type"`
	Token string `json:"token,omitempty"`
	Exp   int64  `json:"exp,omitempty"`
	Error string `json:"error,omitempty"`
}

// reserved is the prefix every control message starts with, as encoded by
// encoding/json (type is the first field).
var reserved = []byte(`{"type":"tokend.`)

// parseControl returns the control message in data, if data is one.
func parseControl(typ websocket.MessageType, data []byte) (Control, bool) {
	if typ != websocket.MessageText || !bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), reserved) {
		return Control{}, false
	}
	var c Control
	if err := json.Unmarshal(data, &c); err != nil || !strings.HasPrefix(c.Type, "tokend.") {
		return Control{Type: "tokend.malformed"}, true
	}
	return c, true
}
