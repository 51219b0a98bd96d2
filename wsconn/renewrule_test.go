package wsconn_test

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/oauth2"

	"github.com/tokend/tokend/internal/clocktest"
	"github.com/tokend/tokend/refresh"
	"github.com/tokend/tokend/wsconn"
)

// whoHandler serves connections that answer every message with who the
// connection is now: its current claims.
func whoHandler(e *env) *wsconn.Handler {
	return e.handler(func(ctx context.Context, c *wsconn.ServerConn) {
		for {
			_, _, err := c.Read(ctx)
			if err != nil {
				return
			}
			cl := c.Claims()
			b, _ := json.Marshal(map[string]any{"sub": cl.Subject, "client_id": cl.ClientID, "scope": cl.Scope,
				"sid": cl.Extra["sid"], "aud": cl.Audience, "exp": cl.Expiry.Unix()})
			if err := c.Write(ctx, websocket.MessageText, b); err != nil {
				return
			}
		}
	})
}

// signed returns a token of claims, with iss, iat and exp (life from now)
// added unless claims sets them.
func (e *env) signed(t *testing.T, claims map[string]any, life time.Duration) string {
	t.Helper()
	m := map[string]any{"iss": issuer, "iat": e.Now().Unix(), "exp": e.Now().Add(life).Unix()}
	maps.Copy(m, claims)
	tok, err := e.signer.Sign(m)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// claimsWithout returns m less the keys.
func claimsWithout(m map[string]any, keys ...string) map[string]any {
	m = maps.Clone(m)
	for _, k := range keys {
		delete(m, k)
	}
	return m
}

// claimsWith returns m with the pairs (key, value, ...) set.
func claimsWith(m map[string]any, kv ...any) map[string]any {
	m = maps.Clone(m)
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

// A renewal keeps who the connection is: the same subject, client, family
// (sid), issuer and audience, and a scope within the one it was opened
// with. Each refusal answers renew_failed with a reason that does not
// echo the token, and the connection keeps its token: its claims, and
// the expiry already scheduled.
func TestRenewalKeepsWhoTheConnectionIs(t *testing.T) {
	e := newEnv(t)
	url := "ws://" + newLoopback(t, whoHandler(e))
	// alice's login through the public client spa, refreshed from family F1.
	user := map[string]any{"sub": "alice", "client_id": "spa", "sid": "F1", "scope": "read write", "aud": "api"}
	// A client_credentials token of a client whose ID is alice's name.
	namesake := map[string]any{"sub": "alice", "client_id": "alice", "scope": "read write", "aud": "api"}
	const accepted = ""
	for _, tc := range []struct {
		name         string
		opened, next map[string]any
		refusal      string
	}{
		{"same everything", user, user, accepted},
		{"other subject", user, claimsWith(user, "sub", "bob"), "token is for another subject (sub)"},
		{"no subject", user, claimsWithout(user, "sub"), "token is for another subject (sub)"},
		{"other client, same subject, wider scope", user, claimsWith(user, "client_id", "demo", "scope", "admin"), "token is of another client (client_id)"},
		{"other client, same subject and scope", user, claimsWith(user, "client_id", "demo"), "token is of another client (client_id)"},
		{"no client", user, claimsWithout(user, "client_id"), "token is of another client (client_id)"},
		{"client_credentials of a client named as the user", user, namesake, "token is of another client (client_id)"},
		{"the user's token on the namesake client's connection", namesake, user, "token is of another client (client_id)"},
		{"other login of the same user and client", user, claimsWith(user, "sid", "F2"), "token is of another login (sid)"},
		{"no login renewing a login", user, claimsWithout(user, "sid"), "token is of another login (sid)"},
		{"a login renewing no login", claimsWithout(user, "sid"), user, "token is of another login (sid)"},
		{"sid not a string", claimsWith(user, "sid", 7), claimsWith(user, "sid", 7), "token is of another login (sid)"},
		{"other audience", user, claimsWith(user, "aud", "billing"), "token is of another issuer or audience (iss, aud)"},
		{"no audience", user, claimsWithout(user, "aud"), "token is of another issuer or audience (iss, aud)"},
		{"audience as an array", user, claimsWith(user, "aud", []string{"api"}), accepted},
		{"wider scope", user, claimsWith(user, "scope", "read write admin"), "token has a scope the connection was not opened with"},
		{"other scope", user, claimsWith(user, "scope", "admin"), "token has a scope the connection was not opened with"},
		{"narrower scope", user, claimsWith(user, "scope", "read"), accepted},
		{"no scope", user, claimsWithout(user, "scope"), accepted},
		{"same scope, other order", user, claimsWith(user, "scope", "write read"), accepted},
		{"scope on a connection opened without one", claimsWithout(user, "scope"), user, "token has a scope the connection was not opened with"},
		// What the verifier refuses: another issuer, no exp, an expired token.
		{"other issuer", user, claimsWith(user, "iss", "https://evil.example"), "invalid token"},
		{"no exp", user, claimsWith(user, "exp", nil), "invalid token"},
		{"expired", user, claimsWith(user, "exp", time.Date(2029, 1, 1, 0, 0, 0, 0, time.UTC).Unix()), "invalid token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _, err := websocket.Dial(t.Context(), url, &websocket.DialOptions{HTTPHeader: bearerHeader(e.signed(t, tc.opened, time.Minute))})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			before := roundTrip(t, c, "who")
			scheduled := e.timers.last()
			next := e.signed(t, tc.next, time.Hour)
			ack := renew(t, c, next)
			after := roundTrip(t, c, "who")
			if tc.refusal == accepted {
				if ack.Type != wsconn.TypeRenewed || ack.Exp != e.Now().Add(time.Hour).Unix() || e.timers.last() != time.Hour {
					t.Fatalf("renewal: %+v, expiry in %v; want renewed, to expire in 1h", ack, e.timers.last())
				}
				var got map[string]any
				if err := json.Unmarshal([]byte(after), &got); err != nil || got["scope"] != strings.Join(strings.Fields(asString(tc.next["scope"])), " ") {
					t.Fatalf("claims after the renewal %s, want the renewed token's", after)
				}
				return
			}
			if ack.Type != wsconn.TypeRenewFailed || ack.Error != tc.refusal || strings.Contains(ack.Error, next) {
				t.Fatalf("renewal: %+v; want renew_failed %q", ack, tc.refusal)
			}
			if after != before || e.timers.last() != scheduled {
				t.Fatalf("after the refusal the connection is %s, expiring in %v; want it unchanged: %s, %v", after, e.timers.last(), before, scheduled)
			}
		})
	}
}

func asString(v any) string { s, _ := v.(string); return s }

// Narrowing, then back to the opening scope, is accepted; nothing wider
// ever is, even after a narrowing.
func TestRenewalScopeStaysWithinTheOpeningOne(t *testing.T) {
	e := newEnv(t)
	user := map[string]any{"sub": "alice", "client_id": "spa", "sid": "F1", "scope": "read write"}
	c, _, err := websocket.Dial(t.Context(), "ws://"+newLoopback(t, whoHandler(e)), &websocket.DialOptions{HTTPHeader: bearerHeader(e.signed(t, user, time.Minute))})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	for _, step := range []struct {
		scope string
		want  string // the answer's type
	}{
		{"read", wsconn.TypeRenewed},
		{"read write", wsconn.TypeRenewed},
		{"write", wsconn.TypeRenewed},
		{"write admin", wsconn.TypeRenewFailed},
		{"read write", wsconn.TypeRenewed},
	} {
		ack := renew(t, c, e.signed(t, claimsWith(user, "scope", step.scope), time.Hour))
		if ack.Type != step.want {
			t.Fatalf("renewal with scope %q: %+v, want %s", step.scope, ack, step.want)
		}
	}
}

// A refused in-band renewal replaces the connection at once with one
// opened with the refused token (the Source's current one), without
// losing a message; renewals on the new connection are accepted in band.
// A second refusal before the new connection has proved healthy backs
// off instead of reconnecting at once: no loop.
func TestClientReconnectsOnRefusedRenewal(t *testing.T) {
	s := newServer(t)
	var fetches atomic.Int64
	// The client of each token the Source fetches.
	clients := []string{"web", "admin-console", "admin-console", "web"}
	src := refresh.New(func(context.Context) (*oauth2.Token, error) {
		client := clients[min(int(fetches.Add(1)), len(clients))-1]
		return &oauth2.Token{AccessToken: s.e.signed(t, map[string]any{"sub": "alice", "client_id": client}, 10*time.Minute)}, nil
	}, neverBackOff())
	t.Cleanup(func() { _ = src.Close() })
	renewals, backoffs := newWaits(), newWaits()
	var mu sync.Mutex
	var disconnects []error
	renewed := make(chan struct{}, 4)
	o := &wsconn.Options{
		OnDisconnect: func(err error) {
			mu.Lock()
			disconnects = append(disconnects, err)
			mu.Unlock()
		},
		OnRenewed: func() { renewed <- struct{}{} },
	}
	wsconn.SetRenewHook(o, renewals.after)
	wsconn.SetTestHooks(o, backoffs.after, top)
	wsconn.SetClock(o, clocktest.New(time.Now()).Now) // no connection ever proves healthy
	c := dial(t, s, src, o)
	echo(t, c, "first")
	renew := func() {
		t.Helper()
		<-renewals.seen
		s.e.Advance(9 * time.Minute)
		renewals.release <- time.Now()
	}

	renew() // with admin-console's token: refused, reconnected at once
	s.waitConns(2)
	echo(t, c, "second")
	renew() // admin-console's again: accepted in band
	select {
	case <-renewed:
	case <-t.Context().Done():
		t.Fatal("the renewal of the same client was not accepted")
	}
	echo(t, c, "third")
	renew() // web's: refused again, before the connection proved healthy
	<-backoffs.seen
	s.mu.Lock()
	conns := len(s.tokens)
	s.mu.Unlock()
	if conns != 2 {
		t.Fatalf("%d connections before the backoff ended, want 2", conns)
	}
	backoffs.release <- time.Now()
	s.waitConns(3)
	echo(t, c, "fourth")

	got := s.waitReceived(4)
	if strings.Join(got, ",") != "first,second,third,fourth" {
		t.Fatalf("server received %q", got)
	}
	if closes := s.waitCloses(2); closes[0] != wsconn.CloseTokenExpired || closes[1] != wsconn.CloseTokenExpired {
		t.Fatalf("the refused connections ended with %v, want %d", closes, wsconn.CloseTokenExpired)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(disconnects) != 2 || fetches.Load() != 4 || len(backoffs.waited) != 1 {
		t.Fatalf("%d disconnects, %d fetches, backoffs %v; want 2, 4, one", len(disconnects), fetches.Load(), backoffs.waited)
	}
	for _, err := range disconnects {
		if !strings.Contains(err.Error(), "refused the renewed token") || !strings.Contains(err.Error(), "another client (client_id)") {
			t.Fatalf("disconnect %v; want the refused renewal and its reason", err)
		}
		if oe, ok := errors.AsType[*refresh.OAuthError](err); !ok || oe.Code != "invalid_token" || oe.Status != 0 ||
			oe.Description != "token is of another client (client_id)" {
			t.Fatalf("disconnect %v; want an OAuthError invalid_token with the reason", err)
		}
	}
}
