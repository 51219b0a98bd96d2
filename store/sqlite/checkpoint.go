package sqlite

import (
	"context"
	"database/sql"
	"time"
)

// checkpointPause is the least time between two background checkpoints
// while writes go on.
const checkpointPause = time.Second

// checkpointResult is what one background checkpoint reports: the
// frames in the log and how many of them are now in the database file
// (SQLite's PRAGMA wal_checkpoint), or the error.
type checkpointResult struct {
	log, copied int
	err         error
}

// checkpointer copies the write-ahead log into the database file, mostly
// beside the writer. The writer's connection never checkpoints on its
// own (wal_autocheckpoint=0): SQLite's automatic checkpoint runs inside
// the commit that takes the log past 1,000 pages and holds every write
// waiting for the writer while it copies and syncs, which made the tail
// of the write latency grow with the database file.
//
// After commits, at most once per pause, the checkpointer runs a PASSIVE
// checkpoint on a reader connection, which waits for neither writer nor
// readers and copies the log as it stood when it began. Writes may have
// gone on meanwhile, so it then has the writer, between two
// transactions, copy the few frames they added: the log is then wholly in
// the database file, and the next commit starts it again from its
// beginning, as SQLite's own checkpoint would have let it (without this
// second step the log would grow for as long as writes never pause). A
// failed checkpoint (another process checkpointing, say) is tried again
// after the next commit.
func (s *Store) checkpointer() {
	defer close(s.ckptDone)
	wait := time.NewTimer(s.checkpointPause)
	wait.Stop()
	defer wait.Stop()
	for {
		select {
		case <-s.committed:
		case <-s.quit:
			return
		}
		r := checkpoint(s.r)
		if r.err == nil {
			reply := make(chan checkpointResult, 1)
			select {
			case s.ckptReq <- reply:
				r = <-reply
			case <-s.quit:
				return
			}
		}
		if s.checkpointed != nil {
			select {
			case s.checkpointed <- r:
			case <-s.quit:
				return
			}
		}
		wait.Reset(s.checkpointPause)
		select {
		case <-wait.C:
		case <-s.quit:
			return
		}
	}
}

// checkpoint runs one PASSIVE checkpoint on a connection of db.
func checkpoint(db *sql.DB) checkpointResult {
	var busy int
	var r checkpointResult
	r.err = db.QueryRowContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &r.log, &r.copied)
	return r
}

// signalCommit tells the checkpointer that the log has grown, without
// waiting for it.
func (s *Store) signalCommit() {
	select {
	case s.committed <- struct{}{}:
	default:
	}
}
