package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tokend/tokend/internal/loadgen"
	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/sqlite"
)

const sigSecret = "app-secret-0123456789abcdef0123456789"

// SIGTERM and SIGHUP during a burst of refreshes and health checks lose no
// request. Every request sent on a new connection either gets a complete
// answer (200 and its JSON) or fails before any byte of an answer (the
// listener had closed, or held it unaccepted): such a refresh changed
// nothing, so each family's generation in the store is exactly the
// rotations its client received. A refresh whose handler is running when
// the signal arrives (it has asked for its body: 100 Continue) completes
// after the "shutting down" line. The process exits 0.
func TestSignalsDrain(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildTokend(t)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) { testSignalDrain(t, bin, sig) })
	}
}

func testSignalDrain(t *testing.T, bin string, sig syscall.Signal) {
	dir := t.TempDir()
	storeURL := "sqlite://" + filepath.Join(dir, "tokend.db")
	if code, _, errOut := runCmd(t, "", "client", "create", "--init", "--id", "app", "--secret", sigSecret, "--grant", "refresh_token", "--mint", "--quiet", "--store", storeURL); code != 0 {
		t.Fatalf("client create: %s", errOut)
	}
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--store", storeURL)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("serve printed no address: %v", err)
	}
	base := strings.TrimSpace(strings.TrimPrefix(line, "tokend: listening on "))
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	shuttingDown := make(chan struct{})
	logDone := make(chan string)
	go func() {
		var all strings.Builder
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			all.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), `msg="shutting down"`) {
				close(shuttingDown)
			}
		}
		logDone <- all.String()
	}()

	// New connections only: a request is accepted or refused, never
	// sent on a connection the server is closing as idle.
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, ExpectContinueTimeout: time.Minute}, Timeout: time.Minute}
	lg := loadgen.NewClient(hc, []string{base}, "app", sigSecret)
	const clients = 16
	rts := make([]string, clients+1) // the last: the held request's family
	for i := range rts {
		if rts[i], err = lg.Mint(t.Context(), i); err != nil {
			t.Fatal(err)
		}
	}

	// The held request: its handler runs (it asks for the body) before
	// the signal, and its body comes after "shutting down".
	body, release := io.Pipe()
	asked := make(chan struct{})
	type answer struct {
		rt  string
		err error
	}
	held := make(chan answer, 1)
	go func() {
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rts[clients]}}.Encode()
		ctx := httptrace.WithClientTrace(t.Context(), &httptrace.ClientTrace{Got100Continue: func() { close(asked) }})
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/oauth/token", body)
		req.ContentLength = int64(len(form))
		req.Header.Set("Expect", "100-continue")
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("app", sigSecret)
		go func() {
			<-shuttingDown
			_, _ = release.Write([]byte(form))
			_ = release.Close()
		}()
		rt, code, err := completeAnswer(hc, req)
		if err == nil && code != 200 {
			err = fmt.Errorf("status %d", code)
		}
		held <- answer{rt, err}
	}()

	var rotations atomic.Int64
	burst := make(chan struct{}) // closed after 300 rotations
	var once sync.Once
	received := make([]int64, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			for {
				rt, code, err := rotateOnce(hc, base, rts[i])
				if errors.Is(err, errUnanswered) {
					return // refused or unaccepted: the server has stopped
				}
				if err != nil || code != 200 {
					t.Errorf("client %d: a refresh got %d %v", i, code, err)
					return
				}
				rts[i] = rt
				received[i]++
				if rotations.Add(1) == 300 {
					once.Do(func() { close(burst) })
				}
			}
		})
	}
	var healthOK atomic.Int64
	for range 4 {
		wg.Go(func() {
			for {
				req, _ := http.NewRequest(http.MethodGet, base+"/healthz", nil)
				_, code, err := completeAnswer(hc, req)
				if errors.Is(err, errUnanswered) {
					return
				}
				if err != nil || code != 200 {
					t.Errorf("health check: %d %v", code, err)
					return
				}
				healthOK.Add(1)
			}
		})
	}
	<-burst
	<-asked
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	a := <-held
	wg.Wait()
	werr := cmd.Wait()
	logs := <-logDone
	if werr != nil {
		t.Fatalf("exit after %v: %v\n%s", sig, werr, logs)
	}
	if a.err != nil {
		t.Fatalf("the request in flight at the signal: %v", a.err)
	}

	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "tokend.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	fams, err := st.ListFamilies(context.Background(), store.FamilyFilter{ClientID: "app"})
	if err != nil || len(fams) != clients+1 {
		t.Fatalf("%d families (%v)", len(fams), err)
	}
	for _, f := range fams {
		i, _ := strconv.Atoi(strings.TrimPrefix(f.Subject, "bench-"))
		want := int64(1) // the held request
		if i < clients {
			want = received[i]
		}
		if f.Generation != want || !f.RevokedAt.IsZero() {
			t.Errorf("%s: generation %d (revoked %q), but its client received %d rotations", f.Subject, f.Generation, f.RevokeReason, want)
		}
	}
	t.Logf("%v: %d rotations, %d health checks", sig, rotations.Load(), healthOK.Load())
}

// errUnanswered: a request failed before any byte of an answer came.
var errUnanswered = errors.New("no answer")

// rotateOnce refreshes rt (the refresh_token grant) on a new connection.
func rotateOnce(hc *http.Client, base, rt string) (string, int, error) {
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	req, _ := http.NewRequest(http.MethodPost, base+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("app", sigSecret)
	return completeAnswer(hc, req)
}

// completeAnswer sends req and reads its whole answer: the status and,
// for a token, the refresh token. A failure before the first byte of the
// answer wraps errUnanswered; one after it (a cut answer) does not.
func completeAnswer(hc *http.Client, req *http.Request) (string, int, error) {
	var answered atomic.Bool
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{GotFirstResponseByte: func() { answered.Store(true) }}))
	resp, err := hc.Do(req)
	if err != nil {
		if !answered.Load() {
			return "", 0, fmt.Errorf("%w: %w", errUnanswered, err)
		}
		return "", 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", resp.StatusCode, fmt.Errorf("a cut answer: %w", err)
	}
	if req.URL.Path != "/oauth/token" {
		if string(raw) != "ok\n" {
			return "", resp.StatusCode, fmt.Errorf("answer %q", raw)
		}
		return "", resp.StatusCode, nil
	}
	var out struct {
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.Unmarshal(raw, &out); err != nil || resp.StatusCode == 200 && out.RefreshToken == "" {
		return "", resp.StatusCode, fmt.Errorf("a malformed answer %q", raw)
	}
	return out.RefreshToken, resp.StatusCode, nil
}
