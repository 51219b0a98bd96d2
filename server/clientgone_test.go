package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/tokend/tokend/server"
	"github.com/tokend/tokend/store"
)

// hangup is a store whose GetClient, in a request that carries a
// hangupKey, cancels that request's context, as its client hanging up
// does, and fails as a driver does when it notices: with the context's
// error, or (unavailable) with a broken connection.
type hangup struct {
	store.Store
	unavailable bool
}

type hangupKey struct{}

func (h hangup) GetClient(ctx context.Context, id string) (store.Client, error) {
	if err := h.hangUp(ctx); err != nil {
		return store.Client{}, err
	}
	return h.Store.GetClient(ctx, id)
}

func (h hangup) Ping(ctx context.Context) error {
	if err := h.hangUp(ctx); err != nil {
		return err
	}
	return h.Store.Ping(ctx)
}

// hangUp cancels the request of ctx, if it carries a hangupKey, and
// returns the error of the interrupted call; nil otherwise.
func (h hangup) hangUp(ctx context.Context) error {
	cancel, ok := ctx.Value(hangupKey{}).(context.CancelFunc)
	if !ok {
		return nil
	}
	cancel()
	<-ctx.Done()
	if h.unavailable {
		return fmt.Errorf("db: %w: read tcp 127.0.0.1:5432: i/o timeout", store.ErrUnavailable)
	}
	return fmt.Errorf("db: %w", ctx.Err())
}

// A client that hangs up while its request waits for the store, on every
// endpoint that reads it, is neither an error in the log nor a server
// error in the metrics, whatever the driver makes of it: it is recorded
// as 499 client_closed_request and logged at debug level, and the store is
// not taken for failing (/readyz stays 200, also after a prober of /readyz
// hung up).
func TestClientGone(t *testing.T) {
	requests := []struct {
		endpoint, method, path, body string
	}{
		{"token", "POST", "/oauth/token", "grant_type=client_credentials"},
		{"token", "POST", "/oauth/token", "grant_type=refresh_token&refresh_token=x"},
		{"token", "POST", "/oauth/token", "grant_type=password&username=alice&password=wonderland"},
		{"revoke", "POST", "/oauth/revoke", "token=x"},
		{"introspect", "POST", "/oauth/introspect", "token=x"},
		{"mint", "POST", "/v1/tokens", `{"subject":"alice"}`},
		{"sessions", "GET", "/v1/subjects/alice/sessions", ""},
		{"sessions", "DELETE", "/v1/subjects/alice/sessions", ""},
		{"sessions", "DELETE", "/v1/sessions/x", ""},
	}
	for _, unavailable := range []bool{false, true} {
		t.Run(fmt.Sprintf("unavailable=%v", unavailable), func(t *testing.T) {
			e := newEnv(t, func(c *server.Config) { c.Store = hangup{Store: c.Store, unavailable: unavailable} })
			want := map[string]int{}
			for _, r := range requests {
				ctx, cancel := context.WithCancel(t.Context())
				req := httptest.NewRequestWithContext(context.WithValue(ctx, hangupKey{}, context.CancelFunc(cancel)), r.method, r.path, strings.NewReader(r.body))
				if strings.HasPrefix(r.body, "{") {
					req.Header.Set("Content-Type", "application/json")
				} else {
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				}
				req.SetBasicAuth(url.QueryEscape(appID), url.QueryEscape(appSecret))
				w := httptest.NewRecorder()
				e.srv.ServeHTTP(w, req)
				cancel()
				if w.Code != 499 {
					t.Errorf("%s %s %s whose client hung up: %d %s; want 499", r.method, r.path, r.body, w.Code, w.Body)
				}
				want[r.endpoint]++
			}
			w := httptest.NewRecorder()
			e.srv.Metrics().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
			m := grepLines(w.Body.String(), "tokend_request_failures_total{")
			var lines []string
			for _, ep := range []string{"introspect", "mint", "revoke", "sessions", "token"} {
				lines = append(lines, fmt.Sprintf(`tokend_request_failures_total{endpoint=%q,error="client_closed_request"} %d`, ep, want[ep]))
			}
			if m != strings.Join(lines, "\n") {
				t.Errorf("failure metrics:\n%s\nwant:\n%s", m, strings.Join(lines, "\n"))
			}
			if logs := e.logs.String(); strings.Contains(logs, "level=ERROR") || strings.Count(logs, `level=DEBUG msg="client went away"`) != len(requests) {
				t.Errorf("logs: want no error, and %d clients that went away at debug level:\n%s", len(requests), logs)
			}
			// A prober of /readyz that hangs up does not blame the store either.
			ctx, cancel := context.WithCancel(t.Context())
			e.srv.ServeHTTP(httptest.NewRecorder(), httptest.NewRequestWithContext(context.WithValue(ctx, hangupKey{}, context.CancelFunc(cancel)), http.MethodGet, "/readyz", nil))
			cancel()
			w = httptest.NewRecorder()
			e.srv.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/readyz", nil))
			if w.Code != http.StatusOK {
				t.Errorf("/readyz after the hang-ups: %d; want 200", w.Code)
			}
			if logs := e.logs.String(); strings.Contains(logs, "level=ERROR") {
				t.Errorf("logs: want no error:\n%s", logs)
			}
		})
	}
}
