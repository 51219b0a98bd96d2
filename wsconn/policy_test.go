package wsconn_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend/internal/policytable"
	"github.com/tokend/tokend/wsconn"
)

// reconnectWaits dials a server that refuses every upgrade, with the zero
// Options and the jitter draw, and returns the first n waits between
// connects.
func reconnectWaits(t *testing.T, n int, jitter func(int64) int64) []time.Duration {
	t.Helper()
	s := newServer(t)
	src, _ := s.source(t)
	s.refuse.Store(-1)
	w := newWaits()
	o := &wsconn.Options{}
	wsconn.SetTestHooks(o, w.after, jitter)
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error)
	go func() { _, err := wsconn.Dial(ctx, s.url(), src, o); errc <- err }()
	var got []time.Duration
	for range n {
		got = append(got, <-w.seen)
		w.release <- time.Now()
	}
	<-w.seen
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Dial: %v", err)
	}
	return got
}

// The socket.* rows of docs/client-policy.md, Go column, are what a Conn
// does with the zero Options: the reconnect waits it draws, at the
// jitter's smallest and largest, and how long a connection must stay up
// to count as healthy, and the ping defaults Dial applies. A socket.* row
// without a check here fails.
func TestPolicyTable(t *testing.T) {
	rows, err := policytable.Read("../docs/client-policy.md")
	if err != nil {
		t.Fatal(err)
	}
	const n = 10
	var lo, hi []time.Duration // the waits at the smallest and the largest draw
	waits := func(t *testing.T) {
		if lo == nil {
			lo = reconnectWaits(t, n, func(int64) int64 { return 0 })
			hi = reconnectWaits(t, n, top)
		}
	}
	eval := func(t *testing.T, v string) time.Duration {
		t.Helper()
		d, err := policytable.Eval(v, nil)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	checks := map[string]func(t *testing.T, v string){
		"socket.backoff.base": func(t *testing.T, v string) {
			waits(t)
			if c := hi[0] + 1; c != eval(t, v) {
				t.Errorf("first ceiling %v (waits %v)", c, hi)
			}
		},
		"socket.backoff.cap": func(t *testing.T, v string) {
			waits(t)
			if c := hi[n-1] + 1; c != eval(t, v) {
				t.Errorf("largest ceiling %v (waits %v)", c, hi)
			}
		},
		"socket.backoff.jitter": func(t *testing.T, v string) {
			waits(t)
			kind := ""
			switch {
			case lo[2] == 0:
				kind = "full"
			case lo[2] == (hi[2]+1)/2:
				kind = "equal"
			}
			if kind != v {
				t.Errorf("third wait drawn from [%v, %v]: %q jitter", lo[2], hi[2]+1, kind)
			}
		},
		"socket.stable":        func(t *testing.T, v string) { assertEq(t, wsconn.HealthyAfter, eval(t, v)) },
		"socket.ping-interval": func(t *testing.T, v string) { assertEq(t, wsconn.DefaultPingInterval, eval(t, v)) },
		"socket.pong-timeout":  func(t *testing.T, v string) { assertEq(t, wsconn.DefaultPingTimeout, eval(t, v)) },
	}
	var keys []string
	for k := range rows {
		if strings.HasPrefix(k, "socket.") {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		t.Run(k, func(t *testing.T) {
			check, ok := checks[k]
			if !ok {
				t.Fatalf("the table's %q has no check here", k)
			}
			check(t, rows[k].Go)
		})
	}
	for k := range checks {
		if _, ok := rows[k]; !ok {
			t.Errorf("the table has no row %q", k)
		}
	}
}

func assertEq(t *testing.T, got, want time.Duration) {
	t.Helper()
	if got != want {
		t.Errorf("got %v, table %v", got, want)
	}
}
