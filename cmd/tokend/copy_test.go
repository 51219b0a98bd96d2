package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/postgres/pgtest"
	"github.com/tokend/tokend/store/redis/redistest"
	"github.com/tokend/tokend/store/sealed"
)

// runningServe is `tokend serve` run in this process on a store.
type runningServe struct {
	base   string
	cancel context.CancelFunc
	done   chan int
}

// startServeIn runs `tokend serve` on storeURL with args in this process,
// until stop.
func startServeIn(t *testing.T, storeURL string, args ...string) *runningServe {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	logs := &syncWriter{w: &strings.Builder{}}
	s := &runningServe{cancel: cancel, done: make(chan int, 1)}
	go func() {
		s.done <- run(ctx, append([]string{"serve", "--addr", "127.0.0.1:0", "--store", storeURL}, args...), nil, pw, logs)
		pw.Close()
	}()
	lines := bufio.NewReader(pr)
	line, err := lines.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "tokend: listening on ") {
		cancel()
		t.Fatalf("serve printed %q, %v; log:\n%s", line, err, logs.String())
	}
	go func() { _, _ = io.Copy(io.Discard, lines) }()
	_, s.base, _ = strings.Cut(strings.TrimSpace(line), " on ")
	return s
}

// stop shuts the server down, as an operator does before a copy.
func (s *runningServe) stop(t *testing.T) {
	t.Helper()
	s.cancel()
	if code := <-s.done; code != 0 {
		t.Fatalf("serve exited %d", code)
	}
}

// token posts a token request with the client's credentials and returns
// the status and the refresh token of the answer ("" for none).
func (s *runningServe) token(t *testing.T, secret string, form url.Values) (int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, s.base+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("app", secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		RefreshToken string `json:"refresh_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body.RefreshToken
}

func (s *runningServe) login(t *testing.T, secret string) string {
	t.Helper()
	code, rt := s.token(t, secret, url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"wonderland"}})
	if code != 200 || rt == "" {
		t.Fatalf("login: %d", code)
	}
	return rt
}

func (s *runningServe) refresh(t *testing.T, secret, rt string) (int, string) {
	t.Helper()
	return s.token(t, secret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
}

// copyCounts parses copy's table: kind → its numbers, in column order.
func copyCounts(t *testing.T, out string) map[string][]string {
	t.Helper()
	rows := map[string][]string{}
	re := regexp.MustCompile(`^(\D+?)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$`)
	for _, line := range strings.Split(out, "\n") {
		if m := re.FindStringSubmatch(line); m != nil {
			rows[m[1]] = m[2:]
		}
	}
	if len(rows) != 8 {
		t.Fatalf("copy printed %d kinds, want 8:\n%s", len(rows), out)
	}
	return rows
}

// rawKeys is the signing keys of the store at u as stored (sealed).
func rawKeys(t *testing.T, u string) []store.Key {
	t.Helper()
	st, err := openAdminStore(t.Context(), u, "test", false, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ks, err := store.Unwrap(st).ListKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// A login made on SQLite moves to PostgreSQL, then Redis, then SQLite
// again with tokend copy, and its refresh token rotates on each: through
// tokend serve's token endpoint, on a store sealed under an operator key.
// On the last store an older generation of another login is still
// detected as reuse, the keys are the bytes the first store sealed, a
// second copy copies nothing, --check passes, and once the target has
// moved on --check fails and copy refuses.
func TestCopyAcrossStores(t *testing.T) {
	dir := t.TempDir()
	keyFile, key, _ := newKeyFile(t, dir, "operator.key")
	stores := []string{
		"sqlite://" + filepath.Join(dir, "first.db"),
		pgtest.ServerURL + pgtest.Schema(t),
		redistest.ServerURL + "?prefix=" + url.QueryEscape(redistest.Prefix(t)),
		"sqlite://" + filepath.Join(dir, "last.db"),
	}
	serveArgs := []string{"--encryption-key-file", keyFile, "--grace", "0"}

	code, out, errOut := runCmd(t, "", "client", "create", "--init", "--store", stores[0], "--id", "app", "--grant", "password,refresh_token", "--quiet")
	if code != 0 {
		t.Fatalf("client create: %s", errOut)
	}
	secret := strings.TrimSpace(out)
	if code, _, errOut := runCmd(t, "wonderland\n", "user", "create", "alice", "--password-stdin", "--store", stores[0]); code != 0 {
		t.Fatalf("user create: %s", errOut)
	}
	srv := startServeIn(t, stores[0], serveArgs...)
	rt := srv.login(t, secret)
	oldRT := srv.login(t, secret) // a second login, which rotates once
	code, other := srv.refresh(t, secret, oldRT)
	if code != 200 {
		t.Fatalf("refresh on the first store: %d", code)
	}
	srv.stop(t)
	firstKeys := rawKeys(t, stores[0])
	if len(firstKeys) == 0 || bytes.Contains(firstKeys[0].Private, []byte("PRIVATE")) {
		t.Fatalf("the first store's keys: %d", len(firstKeys))
	}

	for i := 1; i < len(stores); i++ {
		from, to := stores[i-1], stores[i]
		args := []string{"copy", "--from", from, "--to", to}
		if i%2 == 1 {
			args = append(args, "--init")
		} else if code, _, errOut := runCmd(t, "", "migrate", "--init", "--store", to); code != 0 {
			t.Fatalf("migrate %s: %s", to, errOut)
		}
		code, out, errOut := runCmd(t, "", args...)
		if code != 0 {
			t.Fatalf("copy %d: exit %d: %s%s", i, code, out, errOut)
		}
		rows := copyCounts(t, out)
		if rows["families"][0] != "2" || rows["clients"][0] != "1" || rows["users"][0] != "1" || rows["keys"][0] != "2" || rows["secrets"][0] == "0" {
			t.Fatalf("copy %d copied:\n%s", i, out)
		}
		// Copying again changes nothing, and --check passes.
		code, out, errOut = runCmd(t, "", "copy", "--from", from, "--to", to)
		if code != 0 || !strings.Contains(out, "copied 0 records") {
			t.Fatalf("copy %d again: exit %d:\n%s%s", i, code, out, errOut)
		}
		for kind, row := range copyCounts(t, out) {
			if row[0] != "0" || row[2] != "0" || row[1] != rows[kind][0] {
				t.Errorf("copy %d again, %s: %v, want %s present", i, kind, row, rows[kind][0])
			}
		}
		code, out, errOut = runCmd(t, "", "copy", "--check", "--from", from, "--to", to)
		if code != 0 || !strings.Contains(out, "the target holds every live record of the source") {
			t.Fatalf("copy %d --check: exit %d:\n%s%s", i, code, out, errOut)
		}

		srv := startServeIn(t, to, serveArgs...)
		code, next := srv.refresh(t, secret, rt)
		if code != 200 || next == "" || next == rt {
			t.Fatalf("store %d: the refresh token issued before the move: %d", i, code)
		}
		rt = next
		srv.stop(t)
	}
	last := stores[len(stores)-1]

	// The keys are the first store's bytes, sealed: they open only under
	// the operator key.
	lastKeys := rawKeys(t, last)
	if len(lastKeys) != len(firstKeys) {
		t.Fatalf("%d keys on the last store, want %d", len(lastKeys), len(firstKeys))
	}
	for i := range lastKeys {
		if lastKeys[i].ID != firstKeys[i].ID || !bytes.Equal(lastKeys[i].Private, firstKeys[i].Private) {
			t.Fatalf("key %s: the copied bytes differ from the first store's", firstKeys[i].ID)
		}
	}
	raw, err := openAdminStore(t.Context(), last, "test", false, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := sealed.Wrap(raw, sealed.Keyring{}).ListKeys(t.Context()); !errors.Is(err, store.ErrUnreadable) {
		t.Fatalf("copied keys without the operator key: %v, want ErrUnreadable", err)
	}
	if _, err := sealed.Wrap(raw, sealed.Keyring{Current: key}).ListKeys(t.Context()); err != nil {
		t.Fatalf("copied keys under the operator key: %v", err)
	}

	// The login rotated on the first store is reuse on the last when its
	// older generation comes back.
	srv = startServeIn(t, last, serveArgs...)
	if code, _ := srv.refresh(t, secret, oldRT); code != 400 {
		t.Fatalf("an older generation on the last store: %d, want 400", code)
	}
	if code, _ := srv.refresh(t, secret, other); code != 400 {
		t.Fatalf("the current token of a login whose older token came back: %d, want 400 (revoked)", code)
	}
	srv.stop(t)
	fams, err := raw.ListFamilies(t.Context(), store.FamilyFilter{})
	if err != nil {
		t.Fatal(err)
	}
	reuse := 0
	for _, f := range fams {
		if f.RevokeReason == store.ReasonReuse {
			reuse++
		}
	}
	if reuse != 1 {
		t.Fatalf("%d families revoked for reuse on the last store, want 1", reuse)
	}

	// Now the stores differ, both logins having moved on on the last
	// store: --check says so, without a value, and copy refuses to
	// overwrite the newer records, writing nothing.
	for _, args := range [][]string{{"copy", "--check"}, {"copy"}} {
		code, out, errOut = runCmd(t, "", append(args, "--from", stores[2], "--to", last)...)
		if code != 1 || !strings.Contains(out+errOut, "families") {
			t.Fatalf("%s of differing stores: exit %d:\n%s%s", args, code, out, errOut)
		}
		if row := copyCounts(t, out)["families"]; row[2] != "2" {
			t.Fatalf("%s of differing stores: families %v, want 2 conflicting:\n%s", args, row, out)
		}
		if strings.Contains(out+errOut, secret) || strings.Contains(out+errOut, rt) {
			t.Fatal("copy printed a secret")
		}
	}
	if !strings.Contains(errOut, "nothing was copied") {
		t.Fatalf("copy onto a conflicting target said %q", errOut)
	}
}

// copy's usage errors exit 2; a target that does not exist is refused
// without --init (and not created), and so is memory:, whose copy would
// vanish with the process.
func TestCopyRefusals(t *testing.T) {
	dir := t.TempDir()
	from := "sqlite://" + filepath.Join(dir, "from.db")
	if code, _, errOut := runCmd(t, "", "migrate", "--init", "--store", from); code != 0 {
		t.Fatalf("migrate: %s", errOut)
	}
	missing := filepath.Join(dir, "to.db")
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"copy", "--from", from}, 2, "--from and --to are required"},
		{[]string{"copy", "--to", from}, 2, "--from and --to are required"},
		{[]string{"copy", "--check", "--init", "--from", from, "--to", "sqlite://" + missing}, 2, "--check writes nothing"},
		{[]string{"copy", "--from", from, "--to", "sqlite://" + missing}, 1, "no store at " + missing},
		{[]string{"copy", "--check", "--from", from, "--to", "sqlite://" + missing}, 1, "no store at " + missing},
		{[]string{"copy", "--from", "sqlite://" + missing, "--to", from}, 1, "--from: no store at " + missing},
		{[]string{"copy", "--from", from, "--to", "memory:"}, 1, "lives inside one process"},
		{[]string{"copy", "--from", from, "--to", "sqlite://" + filepath.Join(dir, ".", "from.db")}, 2, "--from and --to name the same store"},
	}
	for _, tc := range cases {
		code, _, errOut := runCmd(t, "", tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("tokend %q: exit %d, %q; want %d and %q", tc.args, code, errOut, tc.code, tc.want)
		}
	}
	if _, err := os.Stat(missing); err == nil {
		t.Fatal("a refused copy created the target")
	}
	// --init creates it; an empty store copies into an empty one.
	if code, out, errOut := runCmd(t, "", "copy", "--init", "--from", from, "--to", "sqlite://"+missing); code != 0 || !strings.Contains(out, "copied 0 records") {
		t.Fatalf("copy --init: exit %d, %q %q", code, out, errOut)
	}
}
