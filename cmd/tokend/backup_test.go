//go:build unix

package main

import (
	"context"
	"database/sql"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tokend/tokend/internal/loadgen"
	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/sqlite"
)

const backupSecret = "app-secret-0123456789abcdef0123456789"

// runOK runs a tokend command in this process and fails t unless it
// exits 0; it returns its standard output.
func runOK(t *testing.T, args ...string) string {
	t.Helper()
	var stdout, stderr strings.Builder
	if code := run(t.Context(), args, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("tokend %s: exit %d: %s%s", strings.Join(args, " "), code, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// runFails runs a tokend command in this process, fails t unless it exits
// 1, and returns its standard error.
func runFails(t *testing.T, args ...string) string {
	t.Helper()
	var stdout, stderr strings.Builder
	if code := run(t.Context(), args, nil, &stdout, &stderr); code != 1 {
		t.Fatalf("tokend %s: exit %d, want 1: %s%s", strings.Join(args, " "), code, stdout.String(), stderr.String())
	}
	return stderr.String()
}

// dirNames lists the names in dir.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// familiesOf opens the SQLite store at path (no server may run on it)
// and returns its families by subject.
func familiesOf(t *testing.T, path string) map[string]store.Family {
	t.Helper()
	st, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	fams, err := st.ListFamilies(t.Context(), store.FamilyFilter{ClientID: "app"})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]store.Family{}
	for _, f := range fams {
		m[f.Subject] = f
	}
	return m
}

// rotator is a client that rotates its family again and again, and
// remembers when it sent each rotation and when it had its answer.
type rotator struct {
	tokens []string    // tokens[g] is the token of generation g
	sent   []time.Time // sent[g]: when the rotation of tokens[g] was sent
	recv   []time.Time // recv[g]: when tokens[g+1] came back
}

// A backup taken while 16 clients rotate their families and new families
// are being made restores into a fresh directory, and holds the store as
// it was at one moment: each family is at a generation between the
// rotations answered before the backup began and those sent before it
// ended, and its token of that generation rotates on a server started on
// the restored store, as does every family made before the backup (and
// none started after it). A token issued after the backup (a later
// login, or a rotation of a family in it) is refused (400), and that
// family still rotates from its restored generation. While the server
// runs, restore refuses and changes nothing.
func TestBackupWhileRotating(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := tokendBin.get(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "tokend.db")
	storeURL := "sqlite://" + path
	runOK(t, "client", "create", "--init", "--id", "app", "--secret", backupSecret, "--grant", "refresh_token", "--mint", "--store", storeURL)
	_, base := startServe(t, bin, storeURL)
	hc := &http.Client{Timeout: 10 * time.Second}
	b := loadgen.NewClient(hc, []string{base}, "app", backupSecret)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	const clients = 16
	rs := make([]*rotator, clients)
	for i := range rs {
		rt, err := b.Mint(ctx, i)
		if err != nil {
			t.Fatal(err)
		}
		rs[i] = &rotator{tokens: []string{rt}}
	}
	// Each rotator signals once it has rotated 20 times, and again 20
	// rotations after it saw the backup end; a minter makes families
	// meanwhile.
	stop, backedUp := make(chan struct{}), make(chan struct{})
	warm, after := make(chan struct{}, clients), make(chan struct{}, clients)
	var wg sync.WaitGroup
	for _, r := range rs {
		wg.Go(func() {
			post := -1 // rotations since it saw the backup end
			for n := 1; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				sent := time.Now()
				next, code, err := b.Rotate(ctx, r.tokens[len(r.tokens)-1])
				if err != nil || code != http.StatusOK {
					t.Errorf("rotation: %d %v", code, err)
					return
				}
				r.sent, r.recv, r.tokens = append(r.sent, sent), append(r.recv, time.Now()), append(r.tokens, next)
				if n == 20 {
					warm <- struct{}{}
				}
				if post < 0 {
					select {
					case <-backedUp:
						post = 0
					default:
					}
				} else if post++; post == 20 {
					after <- struct{}{}
				}
			}
		})
	}
	type minted struct {
		subject    string
		rt         string
		sent, recv time.Time
	}
	var mints []minted
	wg.Go(func() {
		for i := 1000; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			sent := time.Now()
			rt, err := b.Mint(ctx, i)
			if err != nil {
				t.Errorf("mint: %v", err)
				return
			}
			mints = append(mints, minted{subject: "bench-" + strconv.Itoa(i), rt: rt, sent: sent, recv: time.Now()})
		}
	})
	for range clients {
		<-warm
	}

	bak := filepath.Join(t.TempDir(), "backup.db")
	began := time.Now()
	backupOut := runOK(t, "backup", bak, "--store", storeURL)
	ended := time.Now()
	close(backedUp)
	if !strings.Contains(backupOut, "backed up "+path+" to "+bak+" (mode 0600") {
		t.Fatalf("backup said %q", backupOut)
	}
	if fi, err := os.Stat(bak); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v, %v", fi, err)
	}
	// The server holds the store: restore refuses and changes nothing.
	was := dirNames(t, dir)
	if msg := runFails(t, "restore", bak, "--store", storeURL); !strings.Contains(msg, "open in another process") || !strings.Contains(msg, "nothing was changed") {
		t.Fatalf("restore under a running server said %q", msg)
	}
	if got := dirNames(t, dir); !slices.Equal(got, was) {
		t.Fatalf("a refused restore changed the directory: %q, was %q", got, was)
	}
	for range clients {
		<-after
	}
	close(stop)
	wg.Wait()
	if t.Failed() {
		return
	}

	fresh := filepath.Join(t.TempDir(), "restored", "tokend.db")
	out := runOK(t, "restore", bak, "--store", "sqlite://"+fresh)
	if !strings.Contains(out, "restored "+bak+" to "+fresh) || !strings.Contains(out, "there was no database before") {
		t.Fatalf("restore said %q", out)
	}
	fams := familiesOf(t, fresh)
	// The backup counted the families restored.
	if !strings.HasSuffix(backupOut, ", families "+strconv.Itoa(len(fams))+"\n") {
		t.Fatalf("%d families restored; the backup said %q", len(fams), backupOut)
	}

	_, base = startServe(t, bin, "sqlite://"+fresh)
	b = loadgen.NewClient(hc, []string{base}, "app", backupSecret)
	rotates := func(what, rt string) {
		t.Helper()
		next, code, err := b.Rotate(ctx, rt)
		if err != nil || code != http.StatusOK {
			t.Fatalf("%s: the token of the restored generation does not rotate: %d %v", what, code, err)
		}
		if _, code, err := b.Rotate(ctx, next); err != nil || code != http.StatusOK {
			t.Fatalf("%s: its successor does not rotate: %d %v", what, code, err)
		}
	}
	for i, r := range rs {
		f, ok := fams["bench-"+strconv.Itoa(i)]
		if !ok {
			t.Fatalf("client %d: its family is not in the backup", i)
		}
		lo, hi := 0, 0 // rotations answered before the backup began, sent before it ended
		for g := range r.sent {
			if r.recv[g].Before(began) {
				lo++
			}
			if r.sent[g].Before(ended) {
				hi++
			}
		}
		if f.Generation < int64(lo) || f.Generation > int64(hi) {
			t.Fatalf("client %d: generation %d in the backup, want %d..%d", i, f.Generation, lo, hi)
		}
		// The token it holds, rotated after the backup, is ahead of the
		// restored generation: refused, without ending the family.
		if _, code, err := b.Rotate(ctx, r.tokens[len(r.tokens)-1]); err != nil || code != http.StatusBadRequest {
			t.Fatalf("client %d: its token of after the backup: %d %v, want 400", i, code, err)
		}
		rotates("client "+strconv.Itoa(i), r.tokens[f.Generation])
	}
	in, before, later := 0, 0, 0
	for _, m := range mints {
		_, ok := fams[m.subject]
		switch {
		case m.recv.Before(began) && !ok:
			t.Fatalf("%s was made before the backup and is not in it", m.subject)
		case m.sent.After(ended) && ok:
			t.Fatalf("%s was made after the backup and is in it", m.subject)
		case m.recv.Before(began):
			before++
		case m.sent.After(ended):
			later++
		}
		if ok {
			in++
			rotates(m.subject, m.rt)
		} else if _, code, err := b.Rotate(ctx, m.rt); err != nil || code != http.StatusBadRequest {
			t.Fatalf("%s, made after the backup: %d %v, want 400", m.subject, code, err)
		}
	}
	if len(fams) != clients+in {
		t.Fatalf("%d families in the backup, want the %d rotating and the %d minted before it", len(fams), clients, in)
	}
	t.Logf("%d families made before the backup, %d during, %d after; %d in it", before, len(mints)-before-later, later, in)
}

// A server killed with a commit only in its -wal (client b, made after
// the backup while it ran): restoring the backup over the crashed store
// leaves exactly the backup's data, and keeps the previous database, log
// included, beside it.
func TestRestoreOverCrashedServer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := tokendBin.get(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "tokend.db")
	storeURL := "sqlite://" + path
	runOK(t, "client", "create", "--init", "--id", "a", "--grant", "client_credentials", "--quiet", "--store", storeURL)
	cmd, _ := startServe(t, bin, storeURL)
	bak := filepath.Join(t.TempDir(), "backup.db")
	runOK(t, "backup", bak, "--store", storeURL)
	runOK(t, "client", "create", "--id", "b", "--grant", "client_credentials", "--quiet", "--store", storeURL)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if fi, err := os.Stat(path + "-wal"); err != nil || fi.Size() == 0 {
		t.Fatalf("the killed server left no -wal: %v", err)
	}

	out := runOK(t, "restore", bak, "--store", storeURL)
	prev := regexpFind(t, `previous database is kept as (\S+), with its log as \S+-wal`, out)
	for _, name := range []string{filepath.Base(path) + "-wal", filepath.Base(path) + "-shm"} {
		if slices.Contains(dirNames(t, dir), name) {
			t.Fatalf("%s survived the restore: %q", name, dirNames(t, dir))
		}
	}
	clientsOf := func(path string) []string {
		st, err := sqlite.Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		cs, err := st.ListClients(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, c := range cs {
			ids = append(ids, c.ID)
		}
		return ids
	}
	if got := clientsOf(path); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("the restored store has clients %q, want a only", got)
	}
	if got := clientsOf(prev); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("the kept previous store has clients %q, want a and b", got)
	}
}

// regexpFind returns the first group of re in s, or fails t.
func regexpFind(t *testing.T, re, s string) string {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("%q does not match %s", s, re)
	}
	return m[1]
}

// What backup and restore refuse, saying why and changing nothing: a
// store that is not SQLite (with the tool to use instead), a missing
// store, an existing backup file without --force, and a backup that is
// not an SQLite database or has a newer schema.
func TestBackupRestoreRefusals(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tokend.db")
	storeURL := "sqlite://" + path
	runOK(t, "client", "create", "--init", "--id", "a", "--grant", "client_credentials", "--quiet", "--store", storeURL)
	out := filepath.Join(t.TempDir(), "b.db")
	for _, tc := range []struct{ store, want string }{
		{"postgres://postgres@127.0.0.1:5432/test", "pg_dump"},
		{"redis://127.0.0.1:6379/0", "BGSAVE"},
		{"memory:", "no file to backup"},
		{"sqlite://" + filepath.Join(dir, "none.db"), "no store"},
	} {
		if msg := runFails(t, "backup", out, "--store", tc.store); !strings.Contains(msg, tc.want) {
			t.Errorf("backup of %s said %q, want %q", tc.store, msg, tc.want)
		}
		if msg := runFails(t, "restore", out, "--store", tc.store); tc.store != "sqlite://"+filepath.Join(dir, "none.db") && !strings.Contains(msg, tc.want[:3]) {
			t.Errorf("restore to %s said %q", tc.store, msg)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("a refused backup wrote its file")
	}
	if _, err := os.Stat(filepath.Join(dir, "none.db")); err == nil {
		t.Fatal("a backup of a missing store created it")
	}

	runOK(t, "backup", out, "--store", storeURL)
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v, %v", fi, err)
	}
	runOK(t, "client", "create", "--id", "b", "--grant", "client_credentials", "--quiet", "--store", storeURL)
	if msg := runFails(t, "backup", out, "--store", storeURL); !strings.Contains(msg, "exists") || !strings.Contains(msg, "--force") {
		t.Fatalf("backup over a file said %q", msg)
	}
	if s, err := sqlite.Inspect(t.Context(), out); err != nil || s.Clients != 1 {
		t.Fatalf("the refused backup changed the file: %+v, %v", s, err)
	}
	runOK(t, "backup", "--force", out, "--store", storeURL)
	if s, err := sqlite.Inspect(t.Context(), out); err != nil || s.Clients != 2 {
		t.Fatalf("--force did not replace the file: %+v, %v", s, err)
	}

	notDB := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(notDB, []byte("these are not the bytes of a database"), 0o600); err != nil {
		t.Fatal(err)
	}
	newer := filepath.Join(t.TempDir(), "newer.db")
	runOK(t, "backup", newer, "--store", storeURL)
	db, err := sql.Open("sqlite", "file:"+newer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("PRAGMA user_version = 999"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	was := dirNames(t, dir)
	for f, want := range map[string]string{notDB: "not an SQLite database", newer: "newer than this tokend's"} {
		if msg := runFails(t, "restore", f, "--store", storeURL); !strings.Contains(msg, want) || !strings.Contains(msg, "nothing was changed") {
			t.Errorf("restore of %s said %q, want %q", filepath.Base(f), msg, want)
		}
	}
	if got := dirNames(t, dir); !slices.Equal(got, was) {
		t.Fatalf("refused restores changed the store's directory: %q, was %q", got, was)
	}
}

// A backup's FILE that is the store or one of its own files (its -wal,
// -shm, -journal or lock file), by name, through a symbolic link or as a
// hard link, is refused, --force or not, and left as it was.
func TestBackupOwnFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tokend.db")
	storeURL := "sqlite://" + path
	runOK(t, "client", "create", "--init", "--id", "a", "--grant", "client_credentials", "--quiet", "--store", storeURL)
	// Files a crashed process would leave beside the store.
	for _, suffix := range []string{"-wal", "-shm", "-journal"} {
		if err := os.WriteFile(path+suffix, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	other := t.TempDir()
	link, hard := filepath.Join(other, "link"), filepath.Join(other, "hard")
	for _, suffix := range []string{"", "-wal", "-shm", "-journal", ".lock"} {
		own := path + suffix
		if err := os.Remove(link); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if err := os.Symlink(own, link); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(hard); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if err := os.Link(own, hard); err != nil {
			t.Fatal(err)
		}
		was, err := os.ReadFile(own)
		if err != nil {
			t.Fatal(err)
		}
		for _, file := range []string{own, link, hard} {
			for _, force := range [][]string{nil, {"--force"}} {
				args := append([]string{"backup", file, "--store", storeURL}, force...)
				msg := runFails(t, args...)
				if !strings.Contains(msg, "name another file") || !strings.Contains(msg, own) {
					t.Errorf("tokend %s said %q", strings.Join(args, " "), msg)
				}
				if got, err := os.ReadFile(own); err != nil || string(got) != string(was) {
					t.Fatalf("tokend %s changed %s: %v", strings.Join(args, " "), own, err)
				}
			}
		}
		if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Fatalf("a refused backup replaced the link: %v, %v", fi, err)
		}
	}
	if got := dirNames(t, dir); !slices.Equal(got, []string{"tokend.db", "tokend.db-journal", "tokend.db-shm", "tokend.db-wal", "tokend.db.lock"}) {
		t.Fatalf("the store's directory: %q", got)
	}
}

// A directory is no backup file: refused with or without --force, saying
// so (not offering --force), and left as it was.
func TestBackupOverDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokend.db")
	storeURL := "sqlite://" + path
	runOK(t, "client", "create", "--init", "--id", "a", "--grant", "client_credentials", "--quiet", "--store", storeURL)
	d := filepath.Join(t.TempDir(), "d")
	if err := os.Mkdir(d, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, force := range [][]string{nil, {"--force"}} {
		args := append([]string{"backup", d, "--store", storeURL}, force...)
		msg := runFails(t, args...)
		if !strings.Contains(msg, "is a directory") || strings.Contains(msg, "add --force") {
			t.Errorf("tokend %s said %q", strings.Join(args, " "), msg)
		}
		if got := dirNames(t, d); len(got) != 0 {
			t.Fatalf("tokend %s wrote %q in the directory", strings.Join(args, " "), got)
		}
	}
}
