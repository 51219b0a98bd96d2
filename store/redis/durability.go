package redis

import (
	"context"
	"fmt"

	goredis "github.com/redis/go-redis/v9"
)

// Durability is what the Redis server said, at Open, about its
// persistence settings.
type Durability struct {
	// Known is false when CONFIG GET was refused (managed services often
	// disable CONFIG); the settings are then empty.
	Known       bool
	AppendOnly  string // "yes" or "no"
	AppendFsync string // "always", "everysec" or "no"
}

// Durability returns the persistence settings read at Open.
func (s *Store) Durability() Durability { return s.durability }

// Warning says what a crash of the Redis server can lose with these
// settings, or returns "" when they lose no acknowledged rotation
// (appendonly yes with appendfsync always).
func (d Durability) Warning() string {
	switch {
	case !d.Known:
		return "cannot read appendonly/appendfsync (CONFIG refused): a crash may lose rotations and revocations unless the server runs appendonly yes with appendfsync always"
	case d.AppendOnly != "yes":
		return "appendonly is off: a crash loses every rotation and revocation since the last RDB snapshot (or all data if snapshots are off); set appendonly yes and appendfsync always"
	case d.AppendFsync == "always":
		return ""
	case d.AppendFsync == "everysec":
		return "appendfsync everysec: a crash can lose about the last second of rotations and revocations; set appendfsync always"
	default:
		return fmt.Sprintf("appendfsync %s: a crash can lose the writes the kernel has not flushed (often up to 30 s of rotations and revocations); set appendfsync always", d.AppendFsync)
	}
}

// String describes the settings and their risk in one line.
func (d Durability) String() string {
	if !d.Known {
		return "persistence unknown: " + d.Warning()
	}
	w := d.Warning()
	if w == "" {
		w = "no acknowledged write is lost on a crash"
	}
	return fmt.Sprintf("appendonly %s, appendfsync %s: %s", d.AppendOnly, d.AppendFsync, w)
}

// readDurability asks the server for its settings; any error leaves them
// unknown.
func readDurability(ctx context.Context, rdb *goredis.Client) Durability {
	var d Durability
	ao, err := rdb.ConfigGet(ctx, "appendonly").Result()
	if err != nil {
		return d
	}
	af, err := rdb.ConfigGet(ctx, "appendfsync").Result()
	if err != nil {
		return d
	}
	d.AppendOnly, d.AppendFsync = ao["appendonly"], af["appendfsync"]
	d.Known = d.AppendOnly != ""
	return d
}
