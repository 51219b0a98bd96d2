package refresh

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/oauth2"

	"github.com/tokend/tokend/internal/oauth"
)

// graceServer is a refresh-token grant with the server's rotation rule:
// a refresh token is spent by its first use, and for grace after that a
// repeated presentation of it gets the same successor, until the successor
// is first used; any other presentation of a spent token is reuse, answered
// invalid_grant. Until flapUntil it answers 503 without looking at the
// request, so that the client's backoff has reached its ceiling. Then it
// carries out the first refresh and loses its answer, as an outage of the
// given length begins, during which every request hangs until the client
// gives up (hang) or fails with 503 (otherwise).
type graceServer struct {
	grace     time.Duration
	hang      bool
	flapUntil time.Time
	outage    time.Duration

	mu        sync.Mutex
	start     time.Time // when the first refresh was carried out
	end       time.Time // when the outage ends
	n         int
	current   string        // the refresh token that may be used
	spent     string        // the one it replaced
	successor *oauth2.Token // what a repeated presentation of spent gets
	used      bool          // successor's refresh token has been used
	recovered time.Duration // when, after start, spent was presented again and answered
	reused    bool          // a presentation was answered invalid_grant
}

func (g *graceServer) refresh(ctx context.Context, rt string) (*oauth2.Token, error) {
	g.mu.Lock()
	now := time.Now()
	down := g.n > 0 && now.Before(g.end)
	g.mu.Unlock()
	if now.Before(g.flapUntil) {
		return nil, &oauth2.RetrieveError{Response: &http.Response{StatusCode: http.StatusServiceUnavailable}, ErrorCode: oauth.TemporarilyUnavailable}
	}
	if down {
		return g.lose(ctx)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case rt == g.current:
		g.n++
		g.spent, g.used = rt, false
		g.current = fmt.Sprint("rt-", g.n)
		g.successor = &oauth2.Token{AccessToken: fmt.Sprint("at-", g.n), RefreshToken: g.current, ExpiresIn: 900}
		if g.n == 1 { // carried out, and then the answer is lost
			g.start, g.end = now, now.Add(g.outage)
			g.mu.Unlock()
			defer g.mu.Lock()
			return g.lose(ctx)
		}
		return g.successor, nil
	case rt == g.spent && !g.used && now.Sub(g.start) <= g.grace:
		if g.recovered == 0 {
			g.recovered = now.Sub(g.start)
		}
		return g.successor, nil
	}
	g.reused = true
	return nil, &oauth2.RetrieveError{Response: &http.Response{StatusCode: http.StatusBadRequest}, ErrorCode: oauth.InvalidGrant}
}

func (g *graceServer) lose(ctx context.Context) (*oauth2.Token, error) {
	if g.hang {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return nil, &oauth2.RetrieveError{Response: &http.Response{StatusCode: http.StatusServiceUnavailable}, ErrorCode: oauth.TemporarilyUnavailable}
}

// With the default options, a client whose refresh the server carried out
// just as an outage of up to 2 minutes began presents its old refresh
// token again within outage + MaxBackoff + FetchTimeout, inside the
// server's 5-minute grace window, and gets the successor: it is never
// logged out. The waits are the longest full jitter allows, and the server
// was failing before, so that they are at their ceiling.
func TestOutageFitsGraceWindow(t *testing.T) {
	defaults := (&Options{}).withDefaults()
	const grace = 5 * time.Minute
	for _, hang := range []bool{true, false} {
		for outage := time.Duration(0); outage <= 2*time.Minute; outage += 5 * time.Second {
			t.Run(fmt.Sprintf("hang=%v/outage=%v", hang, outage), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					g := &graceServer{grace: grace, hang: hang, current: "rt-0",
						flapUntil: time.Now().Add(10 * time.Minute), outage: outage}
					var reauth error
					s := NewRotating(g.refresh, &Options{
						Initial:          &oauth2.Token{RefreshToken: "rt-0"},
						jitter:           func(n int64) int64 { return n - 1 },
						OnReauthRequired: func(err error) { reauth = err },
					})
					defer s.Close()
					_, _ = s.Token()
					time.Sleep(10*time.Minute + grace)
					synctest.Wait()
					tok, err := s.Token()
					if err != nil || tok.AccessToken != "at-1" || reauth != nil {
						t.Fatalf("after the outage: %v, %v (reauth: %v); want the successor at-1", tok, err, reauth)
					}
					g.mu.Lock()
					defer g.mu.Unlock()
					bound := outage + defaults.MaxBackoff + defaults.FetchTimeout
					t.Logf("presented again %v after the refresh was carried out (bound %v)", g.recovered, bound)
					if g.reused || g.recovered == 0 || g.recovered > bound {
						t.Fatalf("old refresh token presented again after %v (reused: %v), want within %v", g.recovered, g.reused, bound)
					}
				})
			})
		}
	}
}
