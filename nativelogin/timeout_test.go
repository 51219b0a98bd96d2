package nativelogin_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokend/tokend/nativelogin"
)

// inProcess is an HTTP client that hands each request to h in the same
// goroutine, so that no network I/O keeps a synctest bubble's clock still.
func inProcess(h http.Handler) *http.Client {
	return &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec.Result(), nil
	})}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// idleListener is a loopback listener that nobody connects to; Accept
// blocks until Close.
type idleListener struct {
	once   sync.Once
	closed chan struct{}
}

func (l *idleListener) Accept() (net.Conn, error) {
	<-l.closed
	return nil, net.ErrClosed
}

func (l *idleListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *idleListener) Addr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 49152}
}

func (l *idleListener) isClosed() bool {
	select {
	case <-l.closed:
		return true
	default:
		return false
	}
}

// Login waits exactly Config.Timeout (default 5 minutes) for the browser,
// then fails with ErrTimeout and closes the listener.
func TestLoginTimeout(t *testing.T) {
	idp := newFakeProvider("cli")
	defer idp.Close()
	for _, tc := range []struct{ timeout, want time.Duration }{{0, 5 * time.Minute}, {time.Minute, time.Minute}} {
		synctest.Test(t, func(t *testing.T) {
			ln := &idleListener{closed: make(chan struct{})}
			cfg := nativelogin.WithListen(nativelogin.Config{
				Issuer:      idp.URL,
				ClientID:    "cli",
				HTTPClient:  inProcess(idp.Config.Handler),
				OpenBrowser: func(context.Context, string) error { return nil },
				Timeout:     tc.timeout,
			}, func(string, string) (net.Listener, error) { return ln, nil })
			done := make(chan error, 1)
			go func() {
				_, err := nativelogin.Login(t.Context(), cfg)
				done <- err
			}()
			time.Sleep(tc.want - time.Nanosecond)
			synctest.Wait()
			select {
			case err := <-done:
				t.Fatalf("Login returned before %v: %v", tc.want, err)
			default:
			}
			if ln.isClosed() {
				t.Fatal("listener closed while waiting")
			}
			time.Sleep(time.Nanosecond)
			if err := <-done; !errors.Is(err, nativelogin.ErrTimeout) {
				t.Fatalf("Login: %v, want ErrTimeout", err)
			}
			if !ln.isClosed() {
				t.Error("listener still open after the timeout")
			}
		})
	}
}
