package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/tokend/tokend/keys"
	"github.com/tokend/tokend/secrets"
	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/memory"
	"github.com/tokend/tokend/store/sealed"
	"github.com/tokend/tokend/store/sqlite"
)

// newKeyFile writes a new operator key file in dir and returns its path,
// its key and its text.
func newKeyFile(t *testing.T, dir, name string) (string, *sealed.Key, string) {
	t.Helper()
	path := filepath.Join(dir, name)
	k, err := sealed.WriteKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, k, strings.TrimSpace(string(text))
}

// runCmd runs the command line and returns its exit code and output.
func runCmd(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut strings.Builder
	code := run(t.Context(), args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestLoadKeyring(t *testing.T) {
	dir := t.TempDir()
	cur, curKey, curText := newKeyFile(t, dir, "cur")
	old, oldKey, oldText := newKeyFile(t, dir, "old")
	loose := filepath.Join(dir, "loose")
	if err := os.WriteFile(loose, []byte(curText), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name      string
		cur, old  string
		env       map[string]string
		want      []string // IDs, Current first
		wantCur   bool
		wantError string
	}{
		{name: "nothing: encryption off"},
		{name: "file", cur: cur, want: []string{curKey.ID()}, wantCur: true},
		{name: "files", cur: cur, old: old, want: []string{curKey.ID(), oldKey.ID()}, wantCur: true},
		{name: "variables", env: map[string]string{envKey: curText, envOldKey: oldText}, want: []string{curKey.ID(), oldKey.ID()}, wantCur: true},
		{name: "old only: turning off", old: old, want: []string{oldKey.ID()}},
		{name: "file and variable", cur: cur, env: map[string]string{envKey: curText}, wantError: "both encryption-key-file and TOKEND_ENCRYPTION_KEY"},
		{name: "loose file", cur: loose, wantError: "chmod 600"},
		{name: "bad variable", env: map[string]string{envOldKey: "c2hvcnQ="}, wantError: "TOKEND_ENCRYPTION_OLD_KEY: sealed: an operator key is 32 bytes"},
		{name: "missing file", cur: filepath.Join(dir, "missing"), wantError: "no such file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ring, err := loadKeyring(tc.cur, tc.old, func(k string) string { return tc.env[k] })
			if tc.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantError) {
					t.Fatalf("err = %v, want %q", err, tc.wantError)
				}
				if strings.Contains(err.Error(), curText) || strings.Contains(err.Error(), "c2hvcnQ") {
					t.Fatalf("the error %q quotes a key", err)
				}
				return
			}
			if err != nil || strings.Join(ring.IDs(), ",") != strings.Join(tc.want, ",") || (ring.Current != nil) != tc.wantCur {
				t.Fatalf("ring %v (current %v), %v; want %v", ring.IDs(), ring.Current, err, tc.want)
			}
		})
	}
}

func TestEncryptionKeygen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key")
	code, out, errOut := runCmd(t, "", "encryption", "keygen", "--out", path)
	if code != 0 {
		t.Fatalf("keygen: exit %d: %s", code, errOut)
	}
	k, err := sealed.LoadKeyFile(path) // refuses anything but 0600-like modes
	if err != nil {
		t.Fatal(err)
	}
	text, _ := os.ReadFile(path)
	if !strings.Contains(out, k.ID()) || strings.Contains(out, strings.TrimSpace(string(text))) {
		t.Errorf("keygen printed %q: want the key ID and not the key", out)
	}
	if code, _, errOut := runCmd(t, "", "encryption", "keygen", "--out", path); code != 1 || !strings.Contains(errOut, "exists") {
		t.Errorf("keygen over an existing file: exit %d, %q", code, errOut)
	}
	if again, _ := os.ReadFile(path); !bytes.Equal(again, text) {
		t.Error("keygen overwrote an existing key file")
	}
	code, out, errOut = runCmd(t, "", "encryption", "keygen", "--out", "-")
	k2, err := sealed.ParseKey([]byte(out))
	if code != 0 || err != nil || !strings.Contains(errOut, k2.ID()) {
		t.Errorf("keygen --out -: exit %d, %q, %q, %v", code, out, errOut, err)
	}
}

func TestEncryptionUsage(t *testing.T) {
	dir := t.TempDir()
	key, _, _ := newKeyFile(t, dir, "key")
	storeURL := "sqlite://" + filepath.Join(dir, "t.db")
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"encryption"}, 2, "want a command: keygen, status, seal, rotate, unseal or scrub"},
		{[]string{"encryption", "help"}, 0, "write a new random key"},
		{[]string{"encryption", "-h"}, 0, "write a new random key"},
		{[]string{"encryption", "seal", "-h"}, 0, "--key-file"},
		{[]string{"encryption", "bogus"}, 2, `unknown command "bogus"`},
		{[]string{"encryption", "keygen"}, 2, "--out is required"},
		{[]string{"encryption", "seal", "--store", storeURL}, 2, "--key-file (or TOKEND_ENCRYPTION_KEY) is required"},
		{[]string{"encryption", "rotate", "--key-file", key, "--store", storeURL}, 2, "--old-key-file OLD are required"},
		{[]string{"encryption", "rotate", "--key-file", key, "--old-key-file", key, "--store", storeURL}, 2, "the same key"},
		{[]string{"encryption", "unseal", "--store", storeURL}, 2, "--old-key-file"},
		{[]string{"encryption", "status", "extra", "--store", storeURL}, 2, `unexpected argument "extra"`},
	}
	for _, tc := range cases {
		code, out, errOut := runCmd(t, "", tc.args...)
		if code != tc.code || !strings.Contains(out+errOut, tc.want) {
			t.Errorf("%q: exit %d, %q %q; want %d, %q", tc.args, code, out, errOut, tc.code, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "t.db")); !errors.Is(err, fs.ErrNotExist) {
		t.Error("a refused command created the store")
	}
}

// The status, seal, rotate and unseal commands on a store, from a server's
// first start in clear to the end of encryption.
func TestEncryptionCommands(t *testing.T) {
	ctx := t.Context()
	k1, _ := sealed.NewKey(bytes.Repeat([]byte{1}, 32))
	k2, _ := sealed.NewKey(bytes.Repeat([]byte{2}, 32))
	st := memory.New()
	if _, err := keys.Load(ctx, st, keys.EdDSA, time.Hour, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Secret(ctx, secrets.Name, bytes.Repeat([]byte{9}, 32)); err != nil {
		t.Fatal(err)
	}
	ks, _ := st.ListKeys(ctx)
	kid := ks[0].ID
	// keys.Load stores two keys since ID tokens, the access-token key
	// and the ID-token key: with the secret, 3 values.
	steps := []struct {
		op   string
		ring sealed.Keyring
		want []string
	}{
		{"status", sealed.Keyring{}, []string{"key " + kid + " in clear", "secret refresh-successor in clear", "3 in clear"}},
		{"seal", sealed.Keyring{Current: k1}, []string{"3 values now sealed under operator key " + k1.ID() + " (were 3 in clear)"}},
		{"status", sealed.Keyring{}, []string{"key " + kid + " sealed under " + k1.ID(), "3 sealed under " + k1.ID()}},
		{"rotate", sealed.Keyring{Current: k2, Old: []*sealed.Key{k1}}, []string{"now sealed under operator key " + k2.ID() + " (were 3 sealed under " + k1.ID() + ")", "destroy the old key"}},
		{"unseal", sealed.Keyring{Old: []*sealed.Key{k2}}, []string{"3 values now in clear (were 3 sealed under " + k2.ID() + ")"}},
		{"status", sealed.Keyring{}, []string{"3 in clear"}},
	}
	for _, s := range steps {
		var out strings.Builder
		if err := encryption(ctx, s.op, st, s.ring, &out); err != nil {
			t.Fatalf("%s: %v", s.op, err)
		}
		words := strings.Join(strings.Fields(out.String()), " ") // the table's columns align with spaces
		for _, w := range s.want {
			if !strings.Contains(words, w) {
				t.Fatalf("%s printed\n%s\nwant %q", s.op, out.String(), w)
			}
		}
	}
	after, _ := st.ListKeys(ctx)
	if !bytes.Equal(after[0].Private, ks[0].Private) {
		t.Fatal("the signing key changed across seal, rotate and unseal")
	}

	// A failure says nothing was changed and names the key it lacks.
	if err := encryption(ctx, "seal", st, sealed.Keyring{Current: k1}, io.Discard); err != nil {
		t.Fatal(err)
	}
	before, _ := sealed.Inspect(ctx, st)
	err := encryption(ctx, "unseal", st, sealed.Keyring{Old: []*sealed.Key{k2}}, io.Discard)
	if !errors.Is(err, sealed.ErrUnknownKey) || !strings.Contains(err.Error(), "nothing was changed") || !strings.Contains(err.Error(), k1.ID()) {
		t.Fatalf("unseal with the wrong key: %v", err)
	}
	if now, _ := sealed.Inspect(ctx, st); len(now) != len(before) || now[0] != before[0] || now[1] != before[1] {
		t.Fatalf("a failed unseal changed the store: %v, was %v", now, before)
	}
}

// The commands end to end on SQLite.
func TestEncryptionCommandsSQLite(t *testing.T) {
	dir := t.TempDir()
	storeURL := "sqlite://" + filepath.Join(dir, "t.db")
	k1File, k1, _ := newKeyFile(t, dir, "k1")
	k2File, k2, _ := newKeyFile(t, dir, "k2")
	if code, _, errOut := runCmd(t, "", "keys", "rotate", "--init", "--store", storeURL); code != 0 { // a key in clear
		t.Fatalf("keys rotate: %s", errOut)
	}
	code, out, errOut := runCmd(t, "", "encryption", "seal", "--key-file", k1File, "--store", storeURL)
	if code != 0 || !strings.Contains(out, "1 values now sealed under operator key "+k1.ID()) {
		t.Fatalf("seal: exit %d: %q %q", code, out, errOut)
	}
	for _, args := range [][]string{
		{"encryption", "status"},
		{"keys", "list", "--encryption-key-file", k1File},
		{"encryption", "rotate", "--key-file", k2File, "--old-key-file", k1File},
		{"keys", "list", "--encryption-key-file", k2File},
		{"encryption", "unseal", "--old-key-file", k2File},
		{"keys", "list"},
	} {
		code, out, errOut := runCmd(t, "", append(args, "--store", storeURL)...)
		if code != 0 {
			t.Fatalf("%q: exit %d: %s", args, code, errOut)
		}
		if args[1] == "rotate" && !strings.Contains(out, "now sealed under operator key "+k2.ID()) {
			t.Fatalf("rotate printed %q", out)
		}
	}
}

// The admin commands read and write a sealed store with its key, refuse it
// without (naming the key they need), and leave what holds no secret
// alone.
func TestAdminSealedStore(t *testing.T) {
	dir := t.TempDir()
	storeURL := "sqlite://" + filepath.Join(dir, "t.db")
	keyFile, k, keyText := newKeyFile(t, dir, "key")
	if code, _, errOut := runCmd(t, "", "keys", "rotate", "--encryption-key-file", keyFile, "--init", "--store", storeURL); code != 0 {
		t.Fatalf("keys rotate: %s", errOut)
	}
	raw, err := sqlite.Open(t.Context(), filepath.Join(dir, "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	ks, err := raw.ListKeys(t.Context())
	raw.Close()
	if err != nil || len(ks) != 1 || !strings.HasPrefix(string(ks[0].Private), "tks1") {
		t.Fatalf("keys rotate stored %d keys (%v), not sealed", len(ks), err)
	}
	if code, out, errOut := runCmd(t, "", "keys", "list", "--encryption-key-file", keyFile, "--store", storeURL); code != 0 || !strings.Contains(out, ks[0].ID) {
		t.Fatalf("keys list with the key: exit %d, %q %q", code, out, errOut)
	}
	code, _, errOut := runCmd(t, "", "keys", "list", "--store", storeURL)
	if code != 1 || !strings.Contains(errOut, "sealed under operator key "+k.ID()+", and no operator key is configured") {
		t.Fatalf("keys list without the key: exit %d, %q", code, errOut)
	}
	if code, _, errOut := runCmd(t, "", "keys", "rotate", "--store", storeURL); code != 1 {
		t.Fatalf("keys rotate without the key: exit %d, %q (a key in clear in a sealed store)", code, errOut)
	}
	if code, _, errOut := runCmd(t, "", "client", "create", "--id", "web", "--store", storeURL); code != 0 {
		t.Fatalf("client create without the key: %s", errOut)
	}
	t.Setenv(envKey, keyText)
	if code, _, errOut := runCmd(t, "", "keys", "list", "--store", storeURL); code != 0 {
		t.Fatalf("keys list with the key in %s: %s", envKey, errOut)
	}
}

// syncBuffer is a bytes.Buffer for a server's log, written from its
// goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// serveInProcess runs tokend serve until stop is called, and returns its base
// URL; stop returns an error if serve failed.
func serveInProcess(t *testing.T, log io.Writer, args ...string) (base string, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		var err error
		if code := run(ctx, append([]string{"serve", "--addr", "127.0.0.1:0", "--grace", "1h", "--log-level", "debug"}, args...), nil, pw, log); code != 0 {
			err = fmt.Errorf("serve exited %d", code)
		}
		pw.CloseWithError(errors.New("serve returned"))
		done <- err
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		cancel()
		t.Fatalf("serve printed no address: %v (%v)", err, <-done)
	}
	stopped := false
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		return <-done
	}
	t.Cleanup(func() { _ = stop() })
	return strings.TrimSpace(strings.TrimPrefix(line, "tokend: listening on ")), stop
}

// jwks fetches the server's key set.
func jwks(t *testing.T, base string) jose.JSONWebKeySet {
	t.Helper()
	resp, err := http.Get(base + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	return set
}

// A server with a key on a sealed SQLite store: it starts, signs tokens
// that its JWKS verifies, keeps only sealed values in the database, and
// after a restart has the same signing key and the same successor secret
// (a retried refresh token gets the successor it got before the restart).
// With another key, or none, it refuses to start and names the key it
// needs; no log line or error carries a key or a secret.
func TestServeSealedStore(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "tokend.db")
	storeURL := "sqlite://" + dbPath
	keyFile, k, keyText := newKeyFile(t, dir, "key")
	otherFile, other, otherText := newKeyFile(t, dir, "other")
	createSvcAndAlice(t, storeURL, "client_credentials,password,refresh_token")
	var logs syncBuffer

	base, stop := serveInProcess(t, &logs, "--store", storeURL, "--encryption-key-file", keyFile)
	cc := clientcredentials.Config{ClientID: "svc", ClientSecret: svcSecret, TokenURL: base + "/oauth/token"}
	tok, err := cc.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	set := jwks(t, base)
	jws, err := jose.ParseSignedCompact(tok.AccessToken, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	kid := jws.Signatures[0].Header.KeyID
	if pub := set.Key(kid); len(pub) != 1 {
		t.Fatalf("the JWKS has no key %q", kid)
	} else if _, err := jws.Verify(pub[0].Key); err != nil {
		t.Fatalf("the JWKS does not verify the access token: %v", err)
	}
	cfg := oauth2.Config{ClientID: "svc", ClientSecret: svcSecret, Endpoint: oauth2.Endpoint{TokenURL: base + "/oauth/token", AuthStyle: oauth2.AuthStyleInHeader}}
	login, err := cfg.PasswordCredentialsToken(ctx, "alice", "pw")
	if err != nil {
		t.Fatal(err)
	}
	refresh := func(rt string) string {
		t.Helper()
		next, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: rt}).Token()
		if err != nil {
			t.Fatalf("refresh: %v", err)
		}
		return next.RefreshToken
	}
	rt1 := refresh(login.RefreshToken)
	if err := stop(); err != nil {
		t.Fatalf("serve: %v", err)
	}

	// The database holds the signing key and the secret sealed only.
	raw, err := sqlite.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := raw.ListKeys(ctx)
	// Two keys since ID tokens: the access-token key, kid, and the
	// ID-token key serve created beside it.
	if err != nil || len(ks) != 2 || ks[0].ID != kid || ks[1].Use != store.UseID {
		t.Fatalf("stored keys %v, %v", ks, err)
	}
	secret, err := raw.Secret(ctx, secrets.Name, []byte("unused: the secret exists"))
	if err != nil {
		t.Fatal(err)
	}
	clearKeys, err := sealed.Wrap(raw, sealed.Keyring{Current: k}).ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	clearSecret, err := sealed.Wrap(raw, sealed.Keyring{Current: k}).Secret(ctx, secrets.Name, nil)
	raw.Close()
	if err != nil {
		t.Fatal(err)
	}
	id, _ := hex.DecodeString(k.ID())
	for _, v := range [][]byte{ks[0].Private, ks[1].Private, secret} {
		if !bytes.HasPrefix(v, append([]byte("tks1"), id...)) {
			t.Fatalf("a value is stored as %x..., not sealed under %s", v[:8], k.ID())
		}
	}
	files, _ := filepath.Glob(dbPath + "*")
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if bytes.Contains(b, clearKeys[0].Private[len(clearKeys[0].Private)-32:]) || bytes.Contains(b, clearSecret) ||
			bytes.Contains(b, clearKeys[1].Private[len(clearKeys[1].Private)-32:]) {
			t.Fatalf("%s holds the private key or the secret in clear", filepath.Base(f))
		}
	}

	// Restarted: the same key signs, and the same secret derives the same
	// successor for a retried refresh token.
	base, stop = serveInProcess(t, &logs, "--store", storeURL, "--encryption-key-file", keyFile)
	cfg.Endpoint.TokenURL = base + "/oauth/token"
	// The ID-token key joins the JWKS since ID tokens, also unchanged.
	if set := jwks(t, base); len(set.Keys) != 2 || set.Keys[0].KeyID != kid || set.Keys[1].KeyID != ks[1].ID {
		t.Fatalf("after the restart the JWKS is %+v, want the key %s and the ID-token key %s", set.Keys, kid, ks[1].ID)
	}
	if again := refresh(login.RefreshToken); again != rt1 {
		t.Fatal("after the restart a retried refresh token gets another successor: the secret changed")
	}
	if err := stop(); err != nil {
		t.Fatalf("serve: %v", err)
	}

	// Another key, or none: refused, naming the keys by ID.
	refused := []struct {
		args []string
		want string
	}{
		{[]string{"--encryption-key-file", otherFile}, "sealed under operator key " + k.ID() + ", which is not in the keyring (" + other.ID() + ")"},
		{nil, "sealed under operator key " + k.ID() + ", and no operator key is configured"},
	}
	for _, r := range refused {
		err := cmdServe(ctx, append([]string{"--addr", "127.0.0.1:0", "--store", storeURL}, r.args...), io.Discard, &logs)
		if !errors.Is(err, sealed.ErrUnknownKey) || !strings.Contains(err.Error(), r.want) {
			t.Errorf("serve %q: %v; want %q", r.args, err, r.want)
		}
		logs.Write([]byte(err.Error()))
	}

	out := logs.String()
	if !strings.Contains(out, "encryption at rest: on") || !strings.Contains(out, k.ID()) {
		t.Errorf("the log does not say which key seals:\n%s", out)
	}
	for _, s := range [][]byte{[]byte(keyText), []byte(otherText), clearSecret, clearKeys[0].Private} {
		for _, enc := range []string{string(s), hex.EncodeToString(s), base64.StdEncoding.EncodeToString(s), base64.RawURLEncoding.EncodeToString(s)} {
			if strings.Contains(out, enc) {
				t.Fatalf("a key or a secret is in the log or an error (%.10s...)", enc)
			}
		}
	}
}

// A server with a key refuses a store that holds a value in clear, and
// says how to seal it.
func TestServeRefusesClearStore(t *testing.T) {
	dir := t.TempDir()
	storeURL := "sqlite://" + filepath.Join(dir, "tokend.db")
	keyFile, _, _ := newKeyFile(t, dir, "key")
	if code, _, errOut := runCmd(t, "", "keys", "rotate", "--init", "--store", storeURL); code != 0 {
		t.Fatalf("keys rotate: %s", errOut)
	}
	err := cmdServe(t.Context(), []string{"--addr", "127.0.0.1:0", "--store", storeURL, "--encryption-key-file", keyFile}, io.Discard, io.Discard)
	if !errors.Is(err, sealed.ErrClear) || !strings.Contains(err.Error(), "tokend encryption seal") {
		t.Fatalf("serve on a store in clear: %v", err)
	}
	loose := filepath.Join(dir, "loose")
	text, _ := os.ReadFile(keyFile)
	if err := os.WriteFile(loose, text, 0o640); err != nil {
		t.Fatal(err)
	}
	err = cmdServe(t.Context(), []string{"--addr", "127.0.0.1:0", "--store", storeURL, "--encryption-key-file", loose}, io.Discard, io.Discard)
	if !errors.Is(err, sealed.ErrKeyFileMode) {
		t.Fatalf("serve with a key file of mode 0640: %v", err)
	}
}

// cmdServe runs tokend serve with args and returns its error.
func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	root := newRoot(&cmdIO{stdin: strings.NewReader(""), stdout: stdout, stderr: stderr})
	root.SetArgs(append([]string{"serve"}, args...))
	root.SetOut(stdout)
	root.SetErr(stderr)
	_, err := root.ExecuteContextC(ctx)
	return err
}

// svcSecret is the secret of the client svc that createSvcAndAlice makes.
const svcSecret = "svc-secret-0123456789abcdef0123456789"

// createSvcAndAlice creates, with the admin commands, the client svc
// (secret svcSecret, grants as given) and the user alice (password pw)
// in the store at storeURL, creating the store.
func createSvcAndAlice(t *testing.T, storeURL, grants string) {
	t.Helper()
	if code, _, errOut := runCmd(t, "", "client", "create", "--id", "svc", "--secret", svcSecret, "--grant", grants, "--init", "--store", storeURL); code != 0 {
		t.Fatalf("client create: %s", errOut)
	}
	if code, _, errOut := runCmd(t, "pw\n", "user", "create", "alice", "--password-stdin", "--store", storeURL); code != 0 {
		t.Fatalf("user create: %s", errOut)
	}
}
