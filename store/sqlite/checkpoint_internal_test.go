package sqlite

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend/store"
)

// Commits wake the background checkpointer, which copies the whole log
// into the database file; the writer's own connection never checkpoints
// (its wal_autocheckpoint is 0), so no commit waits for a checkpoint.
func TestBackgroundCheckpoint(t *testing.T) {
	ctx := t.Context()
	results := make(chan checkpointResult)
	s, err := OpenWithOptions(ctx, filepath.Join(t.TempDir(), "tokend.db"), Options{checkpointed: results})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var auto int
	if err := s.w.QueryRowContext(ctx, "PRAGMA wal_autocheckpoint").Scan(&auto); err != nil || auto != 0 {
		t.Fatalf("the writer's wal_autocheckpoint: %d %v; want 0", auto, err)
	}
	for i := range 200 {
		if err := s.CreateClient(ctx, store.Client{ID: fmt.Sprint("c", i), CreatedAt: time.UnixMicro(1)}); err != nil {
			t.Fatal(err)
		}
	}
	// The 200 commits woke it at least once; after the last commit, a
	// checkpoint copies everything.
	for {
		r := <-results
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.log > 0 && r.copied == r.log {
			break
		}
	}
	if got, err := s.ListClients(ctx); err != nil || len(got) != 200 {
		t.Fatalf("clients after the checkpoint: %d %v", len(got), err)
	}
}

// Close ends the checkpointer, even one waiting to report.
func TestCloseEndsCheckpointer(t *testing.T) {
	results := make(chan checkpointResult) // never read
	s, err := OpenWithOptions(t.Context(), filepath.Join(t.TempDir(), "tokend.db"), Options{checkpointed: results})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateClient(t.Context(), store.Client{ID: "c"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	<-s.ckptDone
}

// Under writes that never pause, the log still starts again from its
// beginning (so it stays small): the background checkpoint copies the log
// as it stood while new frames keep coming, and the writer, between two
// transactions, copies those, so that a commit finds the whole log in the
// database file and starts it again. Without that second step the log
// grew for as long as the writes went on.
func TestCheckpointRestartsLogUnderLoad(t *testing.T) {
	ctx := t.Context()
	results := make(chan checkpointResult)
	s, err := OpenWithOptions(ctx, filepath.Join(t.TempDir(), "tokend.db"), Options{checkpointed: results, checkpointPause: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := s.CreateClient(ctx, store.Client{ID: fmt.Sprint("c", w, "-", i), Origins: []string{"https://app.example"}}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	defer wg.Wait()
	defer close(stop)
	longest := 0
	for range 200 {
		r := <-results
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.log < longest {
			return // the log started again
		}
		longest = r.log
	}
	t.Fatalf("the log grew to %d frames over 200 checkpoints and never started again", longest)
}
