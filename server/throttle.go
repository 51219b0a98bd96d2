package server

import (
	"hash/maphash"
	"math"
	"net/netip"
	"sync"
	"time"
)

// The throttle's memory (the policy is in ratelimit.go): failure records
// and familiar sources, each a table with a fixed maximum of entries,
// split into shards so that requests rarely wait for each other. Keys are
// 64-bit hashes under a per-process random seed, so an entry has a fixed
// size however long the username it stands for, and no one outside can
// aim for collisions. A table that is full forgets, to make room, the
// least valuable of a few entries picked at random: a failure record with
// the fewest failures, a familiar source seen longest ago.
// An attacker spraying new keys thus mostly evicts its own one-failure
// records, never a lock it cannot outweigh.

const (
	tableShards = 16 // a power of two
	// evictSample is how many entries a full shard looks at to choose the
	// one to forget.
	evictSample = 8
	// familiarRefresh is how stale a familiar source's time may grow
	// before a success writes it again: successes on the hot path are
	// reads.
	familiarRefresh = time.Hour
)

// layer is what a failure record counts: failures from one source, of
// one source at one account, or at one account from anywhere.
type layer uint8

const (
	layerSource layer = iota
	layerPair
	layerAccount
	numLayers
)

var layerNames = [numLayers]string{"source", "source+account", "account"}

func (l layer) String() string { return layerNames[l] }

// kind is the credential a failure was about. Each kind counts apart, so
// that wrong passwords sent through a web app's login form never lock the
// web app's own client authentication.
type kind uint8

const (
	kindSecret   kind = iota // client secrets
	kindPassword             // resource owners' passwords
	kindRefresh              // refresh tokens
)

var kindNames = [...]string{"client_secret", "password", "refresh_token"}

func (k kind) String() string { return kindNames[k] }

// throttleKey returns the table key of (k, l, src, account). The source
// of an IPv6 address is its /64, which one subscriber usually holds
// whole; the account layer ignores src and the source layer ignores
// account.
func throttleKey(seed maphash.Seed, k kind, l layer, src netip.Addr, account string) uint64 {
	var h maphash.Hash
	h.SetSeed(seed)
	_ = h.WriteByte(byte(k))
	_ = h.WriteByte(byte(l))
	if l != layerAccount {
		if src.Is6() {
			p, _ := src.Prefix(64)
			src = p.Addr()
		}
		a := src.As16()
		_, _ = h.Write(a[:])
	}
	if l != layerSource {
		_, _ = h.WriteString(account)
	}
	return h.Sum64()
}

// rule is a layer's limit: limit failures, of which one is forgotten
// every interval nanoseconds (a leaky bucket).
type rule struct {
	limit    uint32
	interval int64
}

// failureRecord is the state of one key. Times are Unix nanoseconds.
type failureRecord struct {
	until    int64  // attempts wait until then
	last     int64  // count is up to date as of then
	count    uint32 // failures not yet forgotten
	inflight uint16 // attempts admitted and not finished (passwords)
	layer    layer
}

// failureTable counts failures per key and computes the waits: once a
// key holds its limit of failures, each failure locks it for delay,
// doubled for each failure beyond the limit, up to maxDelay. It is safe
// for concurrent use.
type failureTable struct {
	rules           [numLayers]rule
	delay, maxDelay int64
	perShard        int
	shards          [tableShards]failureShard
}

type failureShard struct {
	mu sync.Mutex
	m  map[uint64]failureRecord
	_  [40]byte // one shard per cache line
}

func (t *failureTable) shard(key uint64) *failureShard {
	sh := &t.shards[key&(tableShards-1)]
	sh.mu.Lock()
	return sh
}

// leak forgets the failures whose interval has passed since r.last.
func (t *failureTable) leak(r *failureRecord, now int64) {
	if r.count == 0 || now <= r.last {
		if r.count == 0 {
			r.last = now
		}
		return
	}
	iv := t.rules[r.layer].interval
	n := (now - r.last) / iv
	if n >= int64(r.count) {
		r.count, r.last = 0, now
		return
	}
	r.count -= uint32(n)
	r.last += n * iv
}

// lockFor is the lock that the count-th failure at a key with limit
// starts.
func (t *failureTable) lockFor(count, limit uint32) int64 {
	if count < limit {
		return 0
	}
	d := t.delay
	for n := count - limit; n > 0 && d < t.maxDelay; n-- {
		d *= 2
	}
	return min(d, t.maxDelay)
}

// dead reports whether r carries nothing worth keeping.
func dead(r failureRecord, now int64) bool {
	return r.count == 0 && r.inflight == 0 && r.until <= now
}

// lockedFor returns how long attempts at key must still wait, 0 if none.
func (t *failureTable) lockedFor(key uint64, now int64) int64 {
	sh := t.shard(key)
	defer sh.mu.Unlock()
	r, ok := sh.m[key]
	if !ok {
		return 0
	}
	t.leak(&r, now)
	if dead(r, now) {
		delete(sh.m, key)
	}
	return max(r.until-now, 0)
}

// fail counts one failure at key. It returns how long the key was
// already locked (0 if it was not) and whether this failure locked it.
func (t *failureTable) fail(key uint64, l layer, now int64) (before int64, locked bool) {
	sh := t.shard(key)
	defer sh.mu.Unlock()
	r, ok := sh.m[key]
	return t.failLocked(sh, key, r, ok, l, now)
}

func (t *failureTable) failLocked(sh *failureShard, key uint64, r failureRecord, ok bool, l layer, now int64) (before int64, locked bool) {
	if !ok {
		t.makeRoomLocked(sh, now)
		r = failureRecord{layer: l, last: now}
	}
	t.leak(&r, now)
	before = max(r.until-now, 0)
	if r.count < math.MaxUint32 {
		r.count++
	}
	if d := t.lockFor(r.count, t.rules[r.layer].limit); d > 0 {
		r.until = max(r.until, now+d)
		locked = before == 0
	}
	sh.m[key] = r
	return before, locked
}

// raise lifts key's count to at least count, the fleet's, and locks it
// for as long as the count-th failure would. It reports whether this
// locked a key that was not locked.
func (t *failureTable) raise(key uint64, l layer, count int64, now int64) (locked bool) {
	sh := t.shard(key)
	defer sh.mu.Unlock()
	r, ok := sh.m[key]
	if !ok {
		t.makeRoomLocked(sh, now)
		r = failureRecord{layer: l, last: now}
	}
	t.leak(&r, now)
	r.count = max(r.count, uint32(min(max(count, 0), math.MaxUint32)))
	if r.count == 0 {
		return false
	}
	was := r.until > now
	if d := t.lockFor(r.count, t.rules[r.layer].limit); d > 0 {
		r.until = max(r.until, now+d)
	}
	sh.m[key] = r
	return !was && r.until > now
}

// admit reserves an attempt at key, for credentials slow to check: the
// failures of attempts still in flight are not counted yet, so the
// attempts in flight may not exceed the failures left before the limit
// (one at least, once a lock has passed). It returns how long the attempt
// must wait instead, 0 if it was admitted; an admitted attempt ends with
// finish.
func (t *failureTable) admit(key uint64, l layer, now int64) int64 {
	sh := t.shard(key)
	defer sh.mu.Unlock()
	r, ok := sh.m[key]
	if !ok {
		r = failureRecord{layer: l, last: now}
	}
	t.leak(&r, now)
	if w := r.until - now; w > 0 {
		return w
	}
	budget := max(int64(t.rules[r.layer].limit)-int64(r.count), 1)
	if int64(r.inflight) >= budget || r.inflight == math.MaxUint16 {
		return int64(time.Second)
	}
	if !ok {
		t.makeRoomLocked(sh, now)
	}
	r.inflight++
	sh.m[key] = r
	return 0
}

// finish ends an attempt admitted at key, counting a failure if failed;
// it returns what fail returns.
func (t *failureTable) finish(key uint64, l layer, failed bool, now int64) (before int64, locked bool) {
	sh := t.shard(key)
	defer sh.mu.Unlock()
	r, ok := sh.m[key]
	if ok && r.inflight > 0 {
		r.inflight--
	}
	if failed {
		return t.failLocked(sh, key, r, ok, l, now)
	}
	if ok {
		t.leak(&r, now)
		if dead(r, now) {
			delete(sh.m, key)
		} else {
			sh.m[key] = r
		}
	}
	return 0, false
}

// forget deletes key.
func (t *failureTable) forget(key uint64) {
	sh := t.shard(key)
	defer sh.mu.Unlock()
	delete(sh.m, key)
}

// worth orders records for eviction: failures not yet forgotten, then
// locks; attempts in flight weigh most.
func (t *failureTable) worth(r failureRecord, now int64) float64 {
	t.leak(&r, now)
	w := float64(r.count)
	if r.until > now {
		w += 0.5
	}
	return w + 1e6*float64(r.inflight)
}

// makeRoomLocked makes room for one more record in sh.
func (t *failureTable) makeRoomLocked(sh *failureShard, now int64) {
	if sh.m == nil {
		sh.m = make(map[uint64]failureRecord)
	}
	if len(sh.m) < t.perShard {
		return
	}
	var victim uint64
	best, n := math.Inf(1), 0
	for k, r := range sh.m { // map order is random: a random sample
		if w := t.worth(r, now); w < best {
			victim, best = k, w
		}
		if n++; n == evictSample {
			break
		}
	}
	delete(sh.m, victim)
}

// len returns the number of records.
func (t *failureTable) len() int {
	n := 0
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

// familiarTable remembers when a (source, account) pair last
// authenticated. It is safe for concurrent use.
type familiarTable struct {
	perShard int
	within   int64 // nanoseconds a success keeps a source familiar
	shards   [tableShards]familiarShard
}

type familiarShard struct {
	mu sync.Mutex
	m  map[uint64]int64
	_  [40]byte
}

func (t *familiarTable) shard(key uint64) *familiarShard {
	sh := &t.shards[key&(tableShards-1)]
	sh.mu.Lock()
	return sh
}

// seen reports whether key authenticated within t.within before now.
func (t *familiarTable) seen(key uint64, now int64) bool {
	sh := t.shard(key)
	defer sh.mu.Unlock()
	last, ok := sh.m[key]
	return ok && now-last < t.within
}

// mark records a success of key at now. A recent mark is left as it is,
// so that the successes of a busy client are reads.
func (t *familiarTable) mark(key uint64, now int64) {
	sh := t.shard(key)
	defer sh.mu.Unlock()
	last, ok := sh.m[key]
	if ok && now >= last && now-last < int64(familiarRefresh) {
		return
	}
	if !ok {
		if sh.m == nil {
			sh.m = make(map[uint64]int64)
		}
		if len(sh.m) >= t.perShard {
			var victim uint64
			oldest, n := int64(math.MaxInt64), 0
			for k, at := range sh.m {
				if at < oldest {
					victim, oldest = k, at
				}
				if n++; n == evictSample {
					break
				}
			}
			delete(sh.m, victim)
		}
	}
	sh.m[key] = now
}

// len returns the number of familiar sources.
func (t *familiarTable) len() int {
	n := 0
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}
