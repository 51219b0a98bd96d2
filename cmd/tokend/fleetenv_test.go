package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend/store/postgres/pgtest"
	"github.com/tokend/tokend/store/redis/redistest"
)

// The fleet tests (fleet_test.go) run several `tokend serve` processes on
// one shared store, as behind a load balancer, and talk to them over HTTP
// only: what they assert holds whatever the token format or the store's
// internals.

// Settings every instance of a fleet runs with.
const (
	// fleetIssuer is the issuer all the instances share, as behind one
	// load balancer: a token from one is verified by the others.
	fleetIssuer = "http://tokend.fleet.test"
	fleetClient = "app"
	fleetSecret = "app-secret-0123456789abcdef0123456789"
	// keyReload and jwksMaxAge are short so that a key rotation signs
	// after keyReload + jwksMaxAge.
	keyReload  = 200 * time.Millisecond
	jwksMaxAge = time.Second
	// fleetRequestTimeout bounds every request: an answer later than this
	// is a hang.
	fleetRequestTimeout = 10 * time.Second
)

// TestMain removes the tokend binary the process tests share.
func TestMain(m *testing.M) {
	code := m.Run()
	tokendBin.remove()
	os.Exit(code)
}

// tokendBin is the tokend binary, built once per run of the tests.
var tokendBin builtBinary

type builtBinary struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// get builds the binary on first use.
func (b *builtBinary) get(t *testing.T) string {
	t.Helper()
	b.once.Do(func() {
		if b.dir, b.err = os.MkdirTemp("", "tokend-fleet-"); b.err != nil {
			return
		}
		b.path = filepath.Join(b.dir, "tokend")
		cmd := exec.Command("go", "build", "-o", b.path, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

func (b *builtBinary) remove() {
	if b.dir != "" {
		_ = os.RemoveAll(b.dir)
	}
}

// fleetStore is a database server that the instances of a fleet share.
type fleetStore struct {
	name string
	addr string // the shared server's host:port
	// fresh gives t a store of its own on the server (a PostgreSQL schema,
	// a Redis key prefix), removed when t ends, and returns its URL
	// through hostport (the server's, or a proxy's in front of it).
	fresh func(t *testing.T) func(hostport string) string
}

var fleetStores = []fleetStore{
	{name: "postgres", addr: "127.0.0.1:5432", fresh: func(t *testing.T) func(string) string {
		schema := pgtest.Schema(t)
		return func(hp string) string { return "postgres://postgres@" + hp + "/test?sslmode=disable" + schema }
	}},
	{name: "redis", addr: "127.0.0.1:6379", fresh: freshRedisPrefix},
}

// freshRedisPrefix is fleetStore.fresh for the shared Redis: a key prefix
// of t's own (redistest.Prefix).
func freshRedisPrefix(t *testing.T) func(string) string {
	t.Helper()
	prefix := redistest.Prefix(t)
	return func(hp string) string { return "redis://" + hp + "/0?prefix=" + url.QueryEscape(prefix) }
}

// fleet is n `tokend serve` processes on loopback sharing one store.
type fleet struct {
	t     *testing.T
	store string // the store URL the admin commands use
	hc    *http.Client
	bin   string
	args  []string // every instance's serve command line
	nodes []*node
}

// node is one instance.
type node struct {
	name string // A, B, C…
	base string // http://127.0.0.1:PORT
	cmd  *exec.Cmd
	log  *syncWriter
}

// newFleet creates the client app (password, refresh_token and
// client_credentials grants; may mint) and the user alice in the store
// adminURL with the admin CLI, then starts n instances together on
// serveURL (adminURL, or the same store through a proxy). grace is their
// --grace; 0 keeps serve's default. extra are more serve flags.
func newFleet(t *testing.T, adminURL, serveURL string, n int, grace time.Duration, extra ...string) *fleet {
	t.Helper()
	bin := tokendBin.get(t)
	if code, _, errOut := runCmd(t, "", "client", "create", "--init", "--id", fleetClient, "--secret", fleetSecret,
		"--grant", "password,refresh_token,client_credentials", "--mint", "--store", adminURL); code != 0 {
		t.Fatalf("client create: exit %d: %s", code, errOut)
	}
	if code, _, errOut := runCmd(t, "wonderland\n", "user", "create", "alice", "--password-stdin", "--store", adminURL); code != 0 {
		t.Fatalf("user create: exit %d: %s", code, errOut)
	}
	f := &fleet{t: t, store: adminURL, hc: &http.Client{
		Timeout:   fleetRequestTimeout,
		Transport: &http.Transport{MaxIdleConnsPerHost: 128},
	}}
	t.Cleanup(f.hc.CloseIdleConnections)
	args := []string{"serve", "--addr", "127.0.0.1:0", "--issuer", fleetIssuer, "--store", serveURL, "--log-level", "warn",
		"--key-reload", keyReload.String(), "--jwks-max-age", jwksMaxAge.String()}
	if grace > 0 {
		args = append(args, "--grace", grace.String())
	}
	args = append(args, extra...)
	f.bin, f.args = bin, args
	// Started together, as a deployment does: the first key and the
	// server secret are created once, whichever instance comes first.
	f.nodes = make([]*node, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { f.nodes[i], errs[i] = startNode(bin, string(rune('A'+i)), args) })
	}
	wg.Wait()
	for _, nd := range f.nodes {
		if nd != nil {
			f.cleanup(nd)
		}
	}
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// cleanup kills nd when the test ends, logging its log if the test failed.
func (f *fleet) cleanup(nd *node) {
	f.t.Cleanup(func() {
		nd.kill()
		if f.t.Failed() {
			f.t.Logf("log of instance %s:\n%s", nd.name, nd.log.String())
		}
	})
}

// restart kills instance i and starts it again with the same flags: what
// it kept in memory is gone, the store is not.
func (f *fleet) restart(i int) *node {
	f.t.Helper()
	f.nodes[i].kill()
	nd, err := startNode(f.bin, f.nodes[i].name+"'", f.args)
	if err != nil {
		f.t.Fatal(err)
	}
	f.cleanup(nd)
	f.nodes[i] = nd
	f.waitReady(f.t.Context(), nd, fleetRequestTimeout)
	return nd
}

// startNode runs `tokend serve args` and waits for the address it prints.
func startNode(bin, name string, args []string) (*node, error) {
	nd := &node{name: name, cmd: exec.Command(bin, args...), log: &syncWriter{w: &strings.Builder{}}}
	stdout, err := nd.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	nd.cmd.Stderr = nd.log
	if err := nd.cmd.Start(); err != nil {
		return nil, fmt.Errorf("instance %s: %w", name, err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		nd.kill()
		return nil, fmt.Errorf("instance %s printed no address (%v); its log:\n%s", name, err, nd.log.String())
	}
	nd.base = strings.TrimSpace(strings.TrimPrefix(line, "tokend: listening on "))
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	return nd, nil
}

// kill sends SIGKILL and reaps the process; a second call does nothing.
func (nd *node) kill() {
	if nd.cmd.ProcessState != nil {
		return
	}
	_ = nd.cmd.Process.Kill()
	_ = nd.cmd.Wait()
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.String()
}

// answer is an HTTP answer: its status, headers, JSON body (if any) and
// how long it took.
type answer struct {
	status int
	header http.Header
	body   map[string]any
	took   time.Duration
	err    error // a transport error: no answer
}

func (a answer) str(key string) string {
	s, _ := a.body[key].(string)
	return s
}

func (a answer) String() string {
	if a.err != nil {
		return "no answer: " + a.err.Error()
	}
	return fmt.Sprintf("%d %v", a.status, a.body)
}

// do sends req and reads the answer. A transport error is returned in
// answer.err, never fatal: the kill and outage tests expect them.
func (f *fleet) do(req *http.Request) answer {
	start := time.Now()
	resp, err := f.hc.Do(req)
	if err != nil {
		return answer{err: err, took: time.Since(start)}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	a := answer{status: resp.StatusCode, header: resp.Header, took: time.Since(start), err: err}
	if ct, _, _ := strings.Cut(resp.Header.Get("Content-Type"), ";"); strings.HasSuffix(ct, "json") { // application/json, application/jwk-set+json
		_ = json.Unmarshal(raw, &a.body)
	}
	return a
}

// post sends a form to path on nd, authenticated as the fleet's client.
func (f *fleet) post(ctx context.Context, nd *node, path string, form url.Values) answer {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, nd.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		return answer{err: err}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(fleetClient, fleetSecret)
	return f.do(req)
}

// get sends GET path to nd, authenticated as the fleet's client.
func (f *fleet) get(ctx context.Context, nd *node, path string) answer {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, nd.base+path, nil)
	if err != nil {
		return answer{err: err}
	}
	req.SetBasicAuth(fleetClient, fleetSecret)
	return f.do(req)
}

// refresh presents rt to nd's token endpoint.
func (f *fleet) refresh(ctx context.Context, nd *node, rt string) answer {
	return f.post(ctx, nd, "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
}

// login is the password grant for alice on nd; it fails the test unless
// it gives tokens.
func (f *fleet) login(ctx context.Context, nd *node) answer {
	f.t.Helper()
	a := f.post(ctx, nd, "/oauth/token", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"wonderland"}})
	if a.status != http.StatusOK || a.str("refresh_token") == "" || a.str("access_token") == "" {
		f.t.Fatalf("login on %s: %v", nd.name, a)
	}
	return a
}

// mint starts a family for subject on nd (POST /v1/tokens) and
// returns its refresh token.
func (f *fleet) mint(ctx context.Context, nd *node, subject string) (string, error) {
	body, _ := json.Marshal(map[string]any{"subject": subject, "force": true})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, nd.base+"/v1/tokens", strings.NewReader(string(body)))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(fleetClient, fleetSecret)
	a := f.do(req)
	if a.err != nil || a.status != http.StatusOK || a.str("refresh_token") == "" {
		return "", fmt.Errorf("mint for %s on %s: %v", subject, nd.name, a)
	}
	return a.str("refresh_token"), nil
}

// active is the "active" member of nd's introspection (RFC 7662) of tok.
func (f *fleet) active(ctx context.Context, nd *node, tok string) bool {
	f.t.Helper()
	a := f.post(ctx, nd, "/oauth/introspect", url.Values{"token": {tok}})
	active, ok := a.body["active"].(bool)
	if a.status != http.StatusOK || !ok {
		f.t.Fatalf("introspection on %s: %v", nd.name, a)
	}
	return active
}

// families is the number of active families of subject that nd lists
// (GET /v1/subjects/{sub}/sessions).
func (f *fleet) families(ctx context.Context, nd *node, subject string) (int, error) {
	a := f.get(ctx, nd, "/v1/subjects/"+url.PathEscape(subject)+"/sessions")
	list, ok := a.body["sessions"].([]any)
	if a.err != nil || a.status != http.StatusOK || !ok {
		return 0, fmt.Errorf("sessions of %s on %s: %v", subject, nd.name, a)
	}
	return len(list), nil
}

// waitReady polls nd's /readyz until it answers 200, failing the test at
// the deadline.
func (f *fleet) waitReady(ctx context.Context, nd *node, within time.Duration) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		a := f.get(ctx, nd, "/readyz")
		if a.status == http.StatusOK {
			return
		}
		select {
		case <-ctx.Done():
			f.t.Fatalf("/readyz of %s not 200 within %v: %v", nd.name, within, a)
		case <-tick.C:
		}
	}
}
