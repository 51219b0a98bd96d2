// Command chat shows a WebSocket client staying connected across several
// access-token lifetimes. It starts, in one process on loopback, a tokend
// token server issuing short-lived tokens, a chat server that checks them
// with wsconn.Handler, and a client that talks through wsconn.Dial with a
// refresh.Source. Run it from the repository root:
//
//	go run ./examples/chat -ttl 5s -duration 20s
//
// The client renews each token in band, on its one connection; with
// -renewal make-before-break it opens a new connection with each new token
// before closing the old one. Either way it never sees a disconnect.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/tokend/tokend/keys"
	"github.com/tokend/tokend/refresh"
	"github.com/tokend/tokend/server"
	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/memory"
	"github.com/tokend/tokend/verify"
	"github.com/tokend/tokend/wsconn"
)

func main() {
	ttl := flag.Duration("ttl", 5*time.Second, "access-token lifetime")
	duration := flag.Duration("duration", 20*time.Second, "how long the client chats")
	renewal := flag.String("renewal", "in-band", "how the client renews: in-band or make-before-break")
	flag.Parse()
	mode := wsconn.RenewInBand
	switch *renewal {
	case "in-band":
	case "make-before-break":
		mode = wsconn.RenewMakeBeforeBreak
	default:
		log.Fatalf("-renewal: %q is neither in-band nor make-before-break", *renewal)
	}
	if err := run(context.Background(), *ttl, *duration, mode); err != nil {
		log.Fatal(err)
	}
}

// run serves the token server and the chat on one loopback port, and
// chats for duration through a client whose tokens live ttl, renewing
// them as renewal says. It fails if the client saw a disconnect or no
// renewal.
func run(ctx context.Context, ttl, duration time.Duration, renewal wsconn.Renewal) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	issuer := "http://" + ln.Addr().String()
	tokens, err := newTokenServer(ctx, issuer, ttl)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/", tokens)
	mux.Handle("/chat", newChatHandler(issuer))
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	// The client.
	src := refresh.FromClientCredentials(&clientcredentials.Config{
		ClientID: "chatter", ClientSecret: "chatter-secret", TokenURL: issuer + "/oauth/token",
	}, nil)
	defer src.Close()
	var counts connCounts
	conn, err := dialChat(ctx, "ws"+issuer[len("http"):]+"/chat", src, renewal, &counts)
	if err != nil {
		return err
	}
	defer conn.Close()

	sent, err := chat(ctx, conn, duration)
	if err != nil {
		return err
	}
	fmt.Printf("%d messages over %v with %v tokens: %d connection(s), %d renewals, %d disconnects\n",
		sent, duration, ttl, counts.connects.Load(), counts.renewals.Load(), counts.disconnects.Load())
	if counts.disconnects.Load() != 0 || counts.renewals.Load() == 0 {
		return errors.New("the client did not renew without a disconnect")
	}
	_ = os.Stdout.Sync()
	return nil
}

// newTokenServer returns a token server at issuer, issuing access tokens
// that live ttl, with one client, "chatter", allowed the
// client-credentials grant.
func newTokenServer(ctx context.Context, issuer string, ttl time.Duration) (*server.Server, error) {
	st := memory.New()
	signer, err := keys.Load(ctx, st, keys.EdDSA, time.Hour, time.Now())
	if err != nil {
		return nil, err
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	tokens, err := server.New(server.Config{Store: st, Signer: signer, Secret: secret, Issuer: issuer, AccessTTL: ttl})
	if err != nil {
		return nil, err
	}
	if err := st.CreateClient(ctx, store.Client{ID: "chatter", SecretHash: server.HashClientSecret("chatter-secret"),
		Grants: []string{"client_credentials"}}); err != nil {
		return nil, err
	}
	return tokens, nil
}

// newChatHandler returns the chat server, accepting tokens of issuer:
// every message goes back to every connection, prefixed with its
// sender's subject.
func newChatHandler(issuer string) *wsconn.Handler {
	var hub sync.Map // *wsconn.ServerConn → struct{}
	return &wsconn.Handler{
		Verifier: verify.New(issuer, nil), // aud must name the issuer: the token server's default audience
		Serve: func(ctx context.Context, c *wsconn.ServerConn) {
			hub.Store(c, struct{}{})
			defer hub.Delete(c)
			for {
				typ, data, err := c.Read(ctx)
				if err != nil {
					return
				}
				msg := []byte(c.Claims().Subject + ": " + string(data))
				hub.Range(func(k, _ any) bool {
					_ = k.(*wsconn.ServerConn).Write(ctx, typ, msg)
					return true
				})
			}
		},
	}
}

// connCounts counts what happened to the client's connection.
type connCounts struct {
	connects, renewals, disconnects atomic.Int64
}

// dialChat connects to the chat at url with tokens from src, renewing them
// as renewal says, and counts connections, renewals and disconnects in
// counts.
func dialChat(ctx context.Context, url string, src *refresh.Source, renewal wsconn.Renewal, counts *connCounts) (*wsconn.Conn, error) {
	return wsconn.Dial(ctx, url, src, &wsconn.Options{
		Renewal: renewal,
		OnConnect: func(context.Context, func(context.Context, websocket.MessageType, []byte) error) error {
			counts.connects.Add(1)
			return nil
		},
		OnRenewed: func() {
			counts.renewals.Add(1)
			fmt.Println("  (token renewed)")
		},
		OnDisconnect: func(err error) {
			counts.disconnects.Add(1)
			fmt.Println("  (disconnected:", err, ")")
		},
	})
}

// chat sends a message a second on conn for duration, waiting for each
// one's echo, and returns how many it sent.
func chat(ctx context.Context, conn *wsconn.Conn, duration time.Duration) (int, error) {
	sent := 0
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	end := time.After(duration)
	for {
		select {
		case <-tick.C:
			sent++
			msg := fmt.Sprintf("message %d", sent)
			if err := conn.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
				return sent, err
			}
			if err := awaitEcho(ctx, conn, msg); err != nil {
				return sent, err
			}
		case <-end:
			return sent, nil
		}
	}
}

// awaitEcho prints what the chat sends back until the echo of msg. While
// make before break overlaps two connections, a message can come back on
// both; the second copy is skipped here.
func awaitEcho(ctx context.Context, conn *wsconn.Conn, msg string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			return fmt.Errorf("no echo for %q: %w", msg, err)
		}
		if strings.HasSuffix(string(data), ": "+msg) {
			fmt.Println(string(data))
			return nil
		}
	}
}
