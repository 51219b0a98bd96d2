package server_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/oauth2"

	"github.com/tokend/tokend/keys"
	"github.com/tokend/tokend/refresh"
	"github.com/tokend/tokend/server"
	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/memory"
)

// outage is an in-process transport to a server that can lose one answer
// (the handler runs, the client sees a reset) and go down.
type outage struct {
	h        http.Handler
	mu       sync.Mutex
	loseNext bool
	down     bool
	calls    int
}

func (o *outage) RoundTrip(r *http.Request) (*http.Response, error) {
	o.mu.Lock()
	o.calls++
	down, lose := o.down, o.loseNext
	o.loseNext = false
	o.mu.Unlock()
	if down {
		return nil, errors.New("connect: connection refused")
	}
	w := httptest.NewRecorder()
	o.h.ServeHTTP(w, r)
	if lose {
		// The server rotated the token and the process died before the
		// answer left it.
		return nil, io.ErrUnexpectedEOF
	}
	return w.Result(), nil
}

func (o *outage) set(f func(o *outage)) {
	o.mu.Lock()
	defer o.mu.Unlock()
	f(o)
}

// A client with refresh's defaults is never logged out by a server outage
// of up to two minutes that swallowed the answer to a rotation: the server's
// default grace window outlasts the outage plus the client's longest
// backoff and fetch timeout, so the retried refresh token gets the same
// successor. With a grace window shorter than that, the same sequence ends
// the family, which shows the test can fail.
func TestOutageDoesNotLogOut(t *testing.T) {
	for _, tc := range []struct {
		name   string
		grace  time.Duration
		outage time.Duration
		want   error // from the source after the outage
	}{
		{"default grace, 2 min outage", 0, 2 * time.Minute, nil},
		{"30 s grace, 2 min outage", 30 * time.Second, 2 * time.Minute, refresh.ErrReauthRequired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { runOutage(t, tc.grace, tc.outage, tc.want) })
		})
	}
}

func runOutage(t *testing.T, grace, down time.Duration, want error) {
	ctx := t.Context()
	st := memory.New()
	ks, err := keys.Load(ctx, st, "", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Store: st, Signer: ks, Secret: bytes.Repeat([]byte{9}, 32),
		Issuer: "http://tokend.test", Grace: grace})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateClient(ctx, store.Client{ID: "app", SecretHash: server.HashClientSecret("s3cret"), Grants: []string{"refresh_token"}, Mint: true}); err != nil {
		t.Fatal(err)
	}
	net := &outage{h: srv}
	hc := &http.Client{Transport: net}
	cfg := &oauth2.Config{ClientID: "app", ClientSecret: "s3cret", Endpoint: oauth2.Endpoint{TokenURL: "http://tokend.test/oauth/token", AuthStyle: oauth2.AuthStyleInHeader}}

	// A family minted by the app's backend.
	req, _ := http.NewRequest(http.MethodPost, "http://tokend.test/v1/tokens", bytes.NewReader([]byte(`{"subject":"u"}`)))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth("app", "s3cret")
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, req)
	if w.Code != 200 {
		t.Fatalf("mint: %d %s", w.Code, w.Body)
	}
	tok := &oauth2.Token{}
	if err := jsonDecode(w.Body.Bytes(), tok); err != nil {
		t.Fatal(err)
	}
	tok.Expiry = time.Now().Add(-time.Second) // refresh at once

	net.set(func(o *outage) { o.loseNext = true })
	src := refresh.FromConfig(cfg, tok, &refresh.Options{HTTPClient: hc}) // timings at their defaults
	defer src.Close()

	// The first refresh rotates at the server, and its answer is lost as
	// the server goes down.
	if _, err := src.TokenContext(ctx); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("first refresh: %v, want the lost answer", err)
	}
	net.set(func(o *outage) { o.down = true })
	time.Sleep(down) // fake time: the outage
	net.set(func(o *outage) { o.down = false })

	// The client retries on its own backoff schedule: within its longest
	// backoff (1 min) it has tried again against the server that is back.
	time.Sleep(time.Minute)
	synctest.Wait()
	got, err := src.TokenContext(ctx)
	if want != nil {
		if !errors.Is(err, want) {
			t.Fatalf("after the outage: %v, want %v", err, want)
		}
		return
	}
	if err != nil {
		t.Fatalf("after the outage: %v", err)
	}
	// And the family lives on: the next rotation works too.
	src.Invalidate(got)
	if _, err := src.TokenContext(ctx); err != nil {
		t.Fatalf("the rotation after the outage: %v", err)
	}
	fams, _ := st.ListFamilies(ctx, store.FamilyFilter{})
	if len(fams) != 1 || !fams[0].RevokedAt.IsZero() || fams[0].Generation != 2 {
		t.Fatalf("family after the outage: %+v", fams)
	}
}

func jsonDecode(b []byte, tok *oauth2.Token) error {
	var raw struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	tok.AccessToken, tok.RefreshToken = raw.AccessToken, raw.RefreshToken
	return nil
}
