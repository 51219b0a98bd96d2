package wsconn_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/oauth2"

	"github.com/tokend/tokend/keys"
	"github.com/tokend/tokend/refresh"
	"github.com/tokend/tokend/store/memory"
	"github.com/tokend/tokend/verify"
	"github.com/tokend/tokend/wsconn"
)

// A server that checks tokens with wsconn.Handler, and a client that stays
// connected with tokens from a refresh.Source. In a real program the token
// server issues the tokens and publishes the JWKS; here one process signs
// and serves both.
func Example() {
	ctx := context.Background()
	signer, _ := keys.Load(ctx, memory.New(), keys.EdDSA, time.Hour, time.Now())
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(signer.JWKS()) }))
	defer jwks.Close()
	const issuer = "https://issuer.example"

	// The server: echo every message, prefixed with the token's subject.
	echo := httptest.NewServer(&wsconn.Handler{
		Verifier: verify.New(issuer, &verify.Options{JWKSURL: jwks.URL}),
		Serve: func(ctx context.Context, c *wsconn.ServerConn) {
			for {
				typ, data, err := c.Read(ctx)
				if err != nil {
					return
				}
				_ = c.Write(ctx, typ, []byte(c.Claims().Subject+": "+string(data)))
			}
		},
	})
	defer echo.Close()

	// The client: every (re)connect takes its token from src.
	src := refresh.New(func(ctx context.Context) (*oauth2.Token, error) {
		exp := time.Now().Add(time.Minute)
		tok, err := signer.Sign(map[string]any{"iss": issuer, "aud": issuer, "sub": "alice", "exp": exp.Unix()})
		return &oauth2.Token{AccessToken: tok, Expiry: exp}, err
	}, nil)
	defer src.Close()
	conn, err := wsconn.Dial(ctx, "ws"+strings.TrimPrefix(echo.URL, "http"), src, &wsconn.Options{
		OnConnect: func(ctx context.Context, send func(context.Context, websocket.MessageType, []byte) error) error {
			return send(ctx, websocket.MessageText, []byte("subscribe"))
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	_ = conn.Write(ctx, websocket.MessageText, []byte("hello"))
	for range 2 {
		_, msg, _ := conn.Read(ctx)
		fmt.Println(string(msg))
	}
	// Output:
	// alice: subscribe
	// alice: hello
}
