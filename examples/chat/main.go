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

func run(ctx context.Context, ttl, duration time.Duration, renewal wsconn.Renewal) error {
	// The token server, with one client allowed the client-credentials grant.
	st := memory.New()
	signer, err := keys.Load(ctx, st, keys.EdDSA, time.Hour, time.Now())
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	issuer := "http://" + ln.Addr().String()
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	tokens, err := server.New(server.Config{Store: st, Signer: signer, Secret: secret, Issuer: issuer, AccessTTL: ttl})
	if err != nil {
		return err
	}
	if err := st.CreateClient(ctx, store.Client{ID: "chatter", SecretHash: server.HashClientSecret("chatter-secret"),
		Grants: []string{"client_credentials"}}); err != nil {
		return err
	}

	// The chat server: every message goes back to every connection.
	var hub sync.Map // *wsconn.ServerConn → struct{}
	chat := &wsconn.Handler{
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
	mux := http.NewServeMux()
	mux.Handle("/", tokens)
	mux.Handle("/chat", chat)
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	// The client.
	src := refresh.FromClientCredentials(&clientcredentials.Config{
		ClientID: "chatter", ClientSecret: "chatter-secret", TokenURL: issuer + "/oauth/token",
	}, nil)
	defer src.Close()
	var connects, renewals, disconnects atomic.Int64
	conn, err := wsconn.Dial(ctx, "ws"+issuer[len("http"):]+"/chat", src, &wsconn.Options{
		Renewal: renewal,
		OnConnect: func(context.Context, func(context.Context, websocket.MessageType, []byte) error) error {
			connects.Add(1)
			return nil
		},
		OnRenewed: func() {
			renewals.Add(1)
			fmt.Println("  (token renewed)")
		},
		OnDisconnect: func(err error) {
			disconnects.Add(1)
			fmt.Println("  (disconnected:", err, ")")
		},
	})
	if err != nil {
		return err
	}
	defer conn.Close()

	sent := 0
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	end := time.After(duration)
	for done := false; !done; {
		select {
		case <-tick.C:
			sent++
			msg := fmt.Sprintf("message %d", sent)
			if err := conn.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
				return err
			}
			if err := awaitEcho(ctx, conn, msg); err != nil {
				return err
			}
		case <-end:
			done = true
		}
	}
	fmt.Printf("%d messages over %v with %v tokens: %d connection(s), %d renewals, %d disconnects\n",
		sent, duration, ttl, connects.Load(), renewals.Load(), disconnects.Load())
	if disconnects.Load() != 0 || renewals.Load() == 0 {
		return errors.New("the client did not renew without a disconnect")
	}
	_ = os.Stdout.Sync()
	return nil
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
