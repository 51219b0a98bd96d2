package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/tokend/tokend/internal/loadgen"
	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/sqlite"
)

// buildTokend compiles the command once for the tests that run it as a
// process.
func buildTokend(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "tokend")
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build tokend: %v", err)
	}
	cmd := exec.Command(goTool, "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startServe runs `tokend serve` on a free port and returns its base URL.
func startServe(t *testing.T, bin, storeURL string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--store", storeURL, "--log-level", "error")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("serve printed no address: %v", err)
	}
	u := strings.TrimSpace(strings.TrimPrefix(line, "tokend: listening on "))
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	return cmd, u
}

// Kill the server with SIGKILL in the middle of a refresh storm and restart
// it: no family is lost or double-rotated, and every successor a client
// received still works (a request whose answer was lost is retried within
// the grace window and gets the same successor).
func TestKillDuringRefreshStorm(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildTokend(t)
	dir := t.TempDir()
	storeURL := "sqlite://" + filepath.Join(dir, "tokend.db")
	var out strings.Builder
	if code := run(t.Context(), []string{"client", "create", "--init", "--id", "app", "--secret", "app-secret-0123456789abcdef0123456789", "--grant", "refresh_token", "--mint", "--store", storeURL}, nil, &out, &out); code != 0 {
		t.Fatalf("client create: %s", out.String())
	}
	cmd, base := startServe(t, bin, storeURL)
	b := loadgen.NewClient(&http.Client{Timeout: 5 * time.Second}, []string{base}, "app", "app-secret-0123456789abcdef0123456789")
	ctx := context.Background()

	const clients = 16
	type vclient struct {
		rt       string   // the latest refresh token this client received
		received int      // successful rotations
		all      []string // every refresh token it received
	}
	vcs := make([]*vclient, clients)
	for i := range vcs {
		rt, err := b.Mint(ctx, i)
		if err != nil {
			t.Fatal(err)
		}
		vcs[i] = &vclient{rt: rt}
	}
	var total atomic.Int64
	var once sync.Once
	storm := make(chan struct{}) // closed after 2,000 rotations
	killed := make(chan struct{})
	var wg sync.WaitGroup
	for _, vc := range vcs {
		wg.Go(func() {
			for {
				select {
				case <-killed:
					return
				default:
				}
				next, code, err := b.Rotate(ctx, vc.rt)
				if err != nil {
					return // the server died under this request
				}
				if code != http.StatusOK {
					t.Errorf("rotation answered %d before the kill", code)
					return
				}
				vc.rt = next
				vc.received++
				vc.all = append(vc.all, next)
				if total.Add(1) == 2000 {
					once.Do(func() { close(storm) })
				}
			}
		})
	}
	<-storm
	_ = cmd.Process.Signal(os.Kill)
	_ = cmd.Wait()
	close(killed)
	wg.Wait()

	// Check the database as the kill left it.
	st, err := sqlite.Open(ctx, filepath.Join(dir, "tokend.db"))
	if err != nil {
		t.Fatal(err)
	}
	fams, err := st.ListFamilies(ctx, store.FamilyFilter{ClientID: "app"})
	st.Close()
	if err != nil || len(fams) != clients {
		t.Fatalf("%d families after the kill (%v), want %d", len(fams), err, clients)
	}

	_, base = startServe(t, bin, storeURL)
	b = loadgen.NewClient(&http.Client{Timeout: 5 * time.Second}, []string{base}, "app", "app-secret-0123456789abcdef0123456789")
	for i, vc := range vcs {
		next, code, err := b.Rotate(ctx, vc.rt)
		if err != nil || code != http.StatusOK {
			t.Fatalf("client %d: its last successor fails after the restart: %d %v", i, code, err)
		}
		if _, code, _ := b.Rotate(ctx, next); code != http.StatusOK {
			t.Fatalf("client %d: the family does not go on after the restart: %d", i, code)
		}
	}
	st, err = sqlite.Open(ctx, filepath.Join(dir, "tokend.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	fams, _ = st.ListFamilies(ctx, store.FamilyFilter{ClientID: "app"})
	gens := map[string]int64{}
	for _, f := range fams {
		if !f.RevokedAt.IsZero() {
			t.Fatalf("family %s revoked (%s): a double rotation", f.ID, f.RevokeReason)
		}
		gens[f.Subject] = f.Generation
	}
	for i, vc := range vcs {
		// Two rotations after the restart. A rotation whose answer the kill
		// lost was committed or not; either way its retry leaves one.
		g := gens["bench-"+strconv.Itoa(i)]
		if g != int64(vc.received+2) {
			t.Errorf("client %d: generation %d after %d received rotations", i, g, vc.received)
		}
	}
	// No refresh token is stored in clear, in the database or its WAL.
	files, _ := filepath.Glob(filepath.Join(dir, "tokend.db*"))
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, vc := range vcs {
			for _, tok := range vc.all {
				if strings.Contains(string(raw), tok) || strings.Contains(string(raw), strings.TrimPrefix(tok, "rt2_")) {
					t.Fatalf("a refresh token is stored in clear in %s", filepath.Base(f))
				}
			}
		}
	}
	t.Logf("%d rotations before the kill", total.Load())
}

// golang.org/x/oauth2's clientcredentials and Config.TokenSource work
// against the tokend binary unchanged; SIGTERM then drains it and it exits 0.
func TestServeEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildTokend(t)
	storeURL := "sqlite://" + filepath.Join(t.TempDir(), "tokend.db")
	var out strings.Builder
	if code := run(t.Context(), []string{"client", "create", "--init", "--id", "svc", "--secret", svcSecret, "--grant", "client_credentials,password,refresh_token", "--store", storeURL}, nil, &out, &out); code != 0 {
		t.Fatalf("client create: %s", out.String())
	}
	if code := run(t.Context(), []string{"user", "create", "alice", "--password-stdin", "--store", storeURL}, strings.NewReader("pw\n"), &out, &out); code != 0 {
		t.Fatalf("user create: %s", out.String())
	}
	cmd, base := startServe(t, bin, storeURL)
	ctx := t.Context()
	cc := clientcredentials.Config{ClientID: "svc", ClientSecret: svcSecret, TokenURL: base + "/oauth/token"}
	if tok, err := cc.Token(ctx); err != nil || tok.AccessToken == "" {
		t.Fatalf("clientcredentials: %v, %v", tok, err)
	}
	cfg := oauth2.Config{ClientID: "svc", ClientSecret: svcSecret, Endpoint: oauth2.Endpoint{TokenURL: base + "/oauth/token"}}
	tok, err := cfg.PasswordCredentialsToken(ctx, "alice", "pw")
	if err != nil {
		t.Fatal(err)
	}
	tok.Expiry = time.Now().Add(-time.Second) // make x/oauth2 refresh
	next, err := cfg.TokenSource(ctx, tok).Token()
	if err != nil || next.RefreshToken == tok.RefreshToken {
		t.Fatalf("Config.TokenSource refresh: %v, %v", next, err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
}
