package refresh_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/tokend/tokend/refresh"
)

// staticSource is an upstream that always succeeds at once.
type staticSource struct{}

func (staticSource) Token() (*oauth2.Token, error) {
	return &oauth2.Token{AccessToken: "token", Expiry: time.Now().Add(time.Hour)}, nil
}

// BenchmarkToken measures reading a cached, valid token: this package's
// Source against oauth2.ReuseTokenSource, serially and in parallel.
func BenchmarkToken(b *testing.B) {
	src := refresh.FromTokenSource(staticSource{}, nil)
	defer src.Close()
	sources := []struct {
		name string
		ts   oauth2.TokenSource
	}{
		{"refresh.Source", src},
		{"oauth2.ReuseTokenSource", oauth2.ReuseTokenSource(nil, staticSource{})},
	}
	for _, s := range sources {
		if _, err := s.ts.Token(); err != nil {
			b.Fatal(err)
		}
		b.Run(s.name+"/serial", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.ts.Token(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(s.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.ts.Token(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// slowUpstream takes 1 ms per call and succeeds or fails.
type slowUpstream struct {
	calls atomic.Int64
	fail  bool
}

var errDown = errors.New("upstream down")

func (u *slowUpstream) Token() (*oauth2.Token, error) {
	u.calls.Add(1)
	time.Sleep(time.Millisecond)
	if u.fail {
		return nil, errDown
	}
	return &oauth2.Token{AccessToken: "token", ExpiresIn: 3600}, nil
}

// BenchmarkStampede starts 1,000 goroutines that all need a token while none
// is valid, against an upstream that takes 1 ms, and reports the upstream
// calls and the time until the last caller has its answer.
func BenchmarkStampede(b *testing.B) {
	const callers = 1000
	for _, fail := range []bool{false, true} {
		for _, impl := range []string{"refresh.Source", "oauth2.ReuseTokenSource"} {
			name := impl + "/ok"
			if fail {
				name = impl + "/failing"
			}
			b.Run(name, func(b *testing.B) {
				var calls int64
				var last time.Duration
				for b.Loop() {
					u := &slowUpstream{fail: fail}
					var ts oauth2.TokenSource
					var closer io.Closer = io.NopCloser(nil)
					if impl == "refresh.Source" {
						s := refresh.FromTokenSource(u, nil)
						ts, closer = s, s
					} else {
						ts = oauth2.ReuseTokenSource(nil, u)
					}
					start := make(chan struct{})
					var wg sync.WaitGroup
					var answered atomic.Int64
					for range callers {
						wg.Go(func() {
							<-start
							tok, err := ts.Token()
							if (err == nil) == fail || (tok == nil) != fail {
								b.Errorf("fail=%v: got %v, %v", fail, tok, err)
							}
							answered.Add(1)
						})
					}
					t0 := time.Now()
					close(start)
					wg.Wait()
					last += time.Since(t0)
					calls += u.calls.Load()
					_ = closer.Close()
				}
				b.ReportMetric(float64(calls)/float64(b.N), "upstream-calls/op")
				b.ReportMetric(float64(last.Microseconds())/1000/float64(b.N), "ms-to-last/op")
			})
		}
	}
}

// BenchmarkTransport measures a GET on loopback through a plain client
// that sets the header itself, through refresh.Transport and through
// oauth2.Transport.
func BenchmarkTransport(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer token" {
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer srv.Close()
	base := srv.Client().Transport
	src := refresh.FromTokenSource(staticSource{}, nil)
	defer src.Close()
	clients := []struct {
		name   string
		client *http.Client
		header bool
	}{
		{"plain", &http.Client{Transport: base}, true},
		{"refresh.Transport", &http.Client{Transport: &refresh.Transport{Source: src, Base: base}}, false},
		{"oauth2.Transport", &http.Client{Transport: &oauth2.Transport{Source: oauth2.ReuseTokenSource(nil, staticSource{}), Base: base}}, false},
	}
	for _, c := range clients {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, srv.URL, nil)
				if c.header {
					req.Header.Set("Authorization", "Bearer token")
				}
				resp, err := c.client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatal(fmt.Sprint("status ", resp.StatusCode))
				}
			}
		})
	}
}
