package main

import (
	"bytes"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/tokend/tokend/store/sqlite"
	"github.com/tokend/tokend/store/sqlite/sqlitetest"
)

// storedValues returns every signing key's Private and every server
// secret's value as the SQLite database at path holds them (sealed or in
// clear), through a handle of its own.
func storedValues(t *testing.T, path string) [][]byte {
	t.Helper()
	st, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var vs [][]byte
	err = st.RewriteSecrets(t.Context(), func(_, _ string, v []byte) ([]byte, error) {
		vs = append(vs, bytes.Clone(v))
		return v, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

// A server has been serving from an SQLite store in clear, through a key
// rotation, and goes on serving (and reloading its keys and secrets)
// while `tokend encryption seal` runs beside it: afterwards not one
// private key or secret is left in clear in the database, its -wal or
// its -shm, byte for byte. The same after `encryption rotate` for the
// values sealed under the old operator key, and after `unseal` for those
// under the new one. The server answers throughout.
func TestSealWhileServing(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "tokend.db")
	storeURL := "sqlite://" + dbPath
	k1File, k1, _ := newKeyFile(t, dir, "k1")
	k2File, k2, _ := newKeyFile(t, dir, "k2")
	createSvcAndAlice(t, storeURL, "password,refresh_token")
	var logs syncBuffer
	base, stop := serveInProcess(t, &logs, "--store", storeURL, "--key-reload", "20ms")
	cfg := oauth2.Config{ClientID: "svc", ClientSecret: svcSecret, Endpoint: oauth2.Endpoint{TokenURL: base + "/oauth/token", AuthStyle: oauth2.AuthStyleInHeader}}
	login, err := cfg.PasswordCredentialsToken(ctx, "alice", "pw")
	if err != nil {
		t.Fatal(err)
	}
	rt := login.RefreshToken
	refresh := func() error {
		next, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: rt}).Token()
		if err == nil {
			rt = next.RefreshToken
		}
		return err
	}
	for range 3 {
		if err := refresh(); err != nil {
			t.Fatal(err)
		}
	}
	if code, _, errOut := runCmd(t, "", "keys", "rotate", "--store", storeURL); code != 0 { // a second key in clear
		t.Fatalf("keys rotate: %s", errOut)
	}
	if err := refresh(); err != nil {
		t.Fatal(err)
	}
	// Three private keys (two access-token keys and, since ID tokens, the
	// ID-token key that serve created) and the secret.
	clear := storedValues(t, dbPath)
	if len(clear) != 4 || sqlitetest.Holding(t, dbPath, clear) == nil {
		t.Fatalf("%d values in clear, found in %v: the test would prove nothing", len(clear), sqlitetest.Holding(t, dbPath, clear))
	}

	// Each step runs while the server refreshes a login over and over.
	during := func(args ...string) (int, string, string) {
		t.Helper()
		done, failed := make(chan struct{}), make(chan error, 1)
		go func() {
			defer close(failed)
			for {
				select {
				case <-done:
					return
				default:
				}
				if err := refresh(); err != nil {
					failed <- err
					return
				}
			}
		}()
		code, out, errOut := runCmd(t, "", append(args, "--store", storeURL)...)
		close(done)
		if err := <-failed; err != nil {
			t.Fatalf("the server failed a refresh during %q: %v\n%s", args, err, logs.String())
		}
		return code, out, errOut
	}
	code, out, errOut := during("encryption", "seal", "--key-file", k1File)
	if code != 0 || !strings.Contains(out, "4 values now sealed under operator key "+k1.ID()) || // the ID-token key joined the 3
		!strings.Contains(out, "the database files hold no old copy") || !strings.Contains(out, "tokend keys rotate and tokend secrets rotate") {
		t.Fatalf("seal: exit %d: %q %q", code, out, errOut)
	}
	if found := sqlitetest.Holding(t, dbPath, clear); found != nil {
		t.Fatalf("after seal, in clear: %s", strings.Join(found, ", "))
	}
	underK1 := storedValues(t, dbPath)

	code, out, errOut = during("encryption", "rotate", "--key-file", k2File, "--old-key-file", k1File)
	if code != 0 || !strings.Contains(out, "now sealed under operator key "+k2.ID()) {
		t.Fatalf("rotate: exit %d: %q %q", code, out, errOut)
	}
	if found := sqlitetest.Holding(t, dbPath, append(underK1, clear...)); found != nil {
		t.Fatalf("after rotate, sealed under the old key or in clear: %s", strings.Join(found, ", "))
	}
	underK2 := storedValues(t, dbPath)

	code, out, errOut = during("encryption", "unseal", "--old-key-file", k2File)
	if code != 0 || !strings.Contains(out, "4 values now in clear") { // the ID-token key joined the 3
		t.Fatalf("unseal: exit %d: %q %q", code, out, errOut)
	}
	if found := sqlitetest.Holding(t, dbPath, append(underK2, underK1...)); found != nil {
		t.Fatalf("after unseal, sealed under a retired key: %s", strings.Join(found, ", "))
	}
	if err := refresh(); err != nil {
		t.Fatalf("the server after the three steps: %v", err)
	}
	if err := stop(); err != nil {
		t.Fatalf("serve: %v", err)
	}
}

// While a connection keeps reading an older snapshot, the files of an
// SQLite store cannot be rewritten: seal says so, exits 1, and they do
// hold a value in clear; once the read ends, `encryption scrub` leaves
// none.
func TestSealWhileReading(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "tokend.db")
	storeURL := "sqlite://" + dbPath
	keyFile, _, _ := newKeyFile(t, dir, "key")
	if code, _, errOut := runCmd(t, "", "keys", "rotate", "--init", "--store", storeURL); code != 0 {
		t.Fatalf("keys rotate: %s", errOut)
	}
	if code, _, errOut := runCmd(t, "", "secrets", "list", "--store", storeURL); code != 0 { // stores the first secret
		t.Fatalf("secrets list: %s", errOut)
	}
	clear := storedValues(t, dbPath)

	db, err := sql.Open("sqlite", "file:"+dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tx, err := db.BeginTx(t.Context(), &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := tx.QueryRowContext(t.Context(), "SELECT count(*) FROM keys").Scan(&n); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCmd(t, "", "encryption", "seal", "--key-file", keyFile, "--wait", "300ms", "--store", storeURL)
	if code != 1 || !strings.Contains(out, "2 values now sealed") || !strings.Contains(errOut, "the seal is done, but") ||
		!strings.Contains(errOut, dbPath+"-wal") || !strings.Contains(errOut, "may still hold old values") || !strings.Contains(errOut, "tokend encryption scrub") {
		t.Fatalf("seal while a read holds the -wal: exit %d: %q %q", code, out, errOut)
	}
	if sqlitetest.Holding(t, dbPath, clear) == nil {
		t.Fatal("no file holds a value in clear, yet seal said one may: the test would prove nothing")
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCmd(t, "", "encryption", "scrub", "--store", storeURL)
	if code != 0 || !strings.Contains(out, "the database files hold no old copy") {
		t.Fatalf("scrub: exit %d: %q %q", code, out, errOut)
	}
	if found := sqlitetest.Holding(t, dbPath, clear); found != nil {
		t.Fatalf("after scrub, in clear: %s", strings.Join(found, ", "))
	}
}
