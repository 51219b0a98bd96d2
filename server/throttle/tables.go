package throttle

import (
	"cmp"
	"hash/maphash"
	"math"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/tokend/tokend/store"
)

// The throttle's memory (the policy is in throttle.go): failure records
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

// Kind is the credential a failure was about. Each kind counts apart, so
// that wrong passwords sent through a web app's login form never lock the
// web app's own client authentication.
type Kind uint8

// The kinds of credential.
const (
	ClientSecret Kind = iota // client secrets
	Password                 // resource owners' passwords
)

var kindNames = [...]string{"client_secret", "password"}

// layers returns the layers that count failures of k. A client secret
// has no account layer: it is 256 random bits (or an operator's choice
// of at least as many characters), which no one spread over many
// addresses guesses, so a lock of the client would only let anyone shut
// the client out; the source and the pair still slow a guesser. A
// password is guessable, so its account counts too.
func (k Kind) layers() []layer {
	if k == ClientSecret {
		return []layer{layerSource, layerPair}
	}
	return []layer{layerSource, layerPair, layerAccount}
}

// String returns k's name in logs: "client_secret" or "password".
func (k Kind) String() string { return kindNames[k] }

// throttleKey returns the table key of (k, l, src, account). The source
// of an IPv6 address is its /64, which one subscriber usually holds
// whole; the account layer ignores src and the source layer ignores
// account.
func throttleKey(seed maphash.Seed, k Kind, l layer, src netip.Addr, account string) uint64 {
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
	until int64  // attempts wait until then
	last  int64  // count is up to date as of then
	count uint32 // failures not yet forgotten
	layer layer
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
	return r.count == 0 && r.until <= now
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

// forget deletes key.
func (t *failureTable) forget(key uint64) {
	sh := t.shard(key)
	defer sh.mu.Unlock()
	delete(sh.m, key)
}

// worth orders records for eviction: failures not yet forgotten, then
// locks.
func (t *failureTable) worth(r failureRecord, now int64) float64 {
	t.leak(&r, now)
	w := float64(r.count)
	if r.until > now {
		w += 0.5
	}
	return w
}

// makeRoomLocked makes room for one more record in sh.
func (t *failureTable) makeRoomLocked(sh *failureShard, now int64) {
	if sh.m == nil {
		sh.m = make(map[uint64]failureRecord)
	}
	if len(sh.m) < t.perShard {
		return
	}
	evictLowest(sh.m, func(r failureRecord) float64 { return t.worth(r, now) })
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

// familiarSlots is how many sources familiarTable keeps per account, as
// many as a store.FamiliarSources does.
const familiarSlots = store.FamiliarPerAccount

// familiarTable remembers, per account, when the familiarSlots sources
// that authenticated as it last did so. An account's sources never push
// out another's, so successes elsewhere, however many, cannot make an
// account's usual source unfamiliar; a full table forgets the account,
// of a few picked at random, whose last success is the oldest. It is
// safe for concurrent use.
type familiarTable struct {
	perShard int
	within   int64 // nanoseconds a success keeps a source familiar
	shards   [tableShards]familiarShard
}

type familiarShard struct {
	mu sync.Mutex
	m  map[uint64]familiarAccount
	_  [40]byte
}

// familiarAccount is one account's sources (keys of the source layer)
// and when each last authenticated (Unix ns; 0: an empty slot).
type familiarAccount struct {
	src [familiarSlots]uint64
	at  [familiarSlots]int64
}

// newest returns the time of a's last success.
func (a *familiarAccount) newest() int64 { return slices.Max(a.at[:]) }

func (t *familiarTable) shard(account uint64) *familiarShard {
	sh := &t.shards[account&(tableShards-1)]
	sh.mu.Lock()
	return sh
}

// seen reports whether src authenticated as account within t.within
// before now.
func (t *familiarTable) seen(account, src uint64, now int64) bool {
	sh := t.shard(account)
	defer sh.mu.Unlock()
	a, ok := sh.m[account]
	if !ok {
		return false
	}
	for i, s := range a.src {
		if s == src && a.at[i] != 0 {
			return now-a.at[i] < t.within
		}
	}
	return false
}

// mark records a success of src as account at now, in the slot of src or
// else of the account's oldest. It reports whether it wrote the mark: a
// mark younger than familiarRefresh is left as it is, so that the
// successes of a busy account are reads.
func (t *familiarTable) mark(account, src uint64, now int64) bool {
	sh := t.shard(account)
	defer sh.mu.Unlock()
	a, ok := sh.m[account]
	if !ok {
		t.makeRoomLocked(sh)
	}
	slot := 0
	for i := range a.src {
		if a.src[i] == src && a.at[i] != 0 {
			slot = i
			break
		}
		if a.at[i] < a.at[slot] {
			slot = i
		}
	}
	if last := a.at[slot]; a.src[slot] == src && last != 0 && now >= last && now-last < int64(familiarRefresh) {
		return false
	}
	a.src[slot], a.at[slot] = src, max(now, 1)
	sh.m[account] = a
	return true
}

// makeRoomLocked makes room for one more account in sh.
func (t *familiarTable) makeRoomLocked(sh *familiarShard) {
	if sh.m == nil {
		sh.m = make(map[uint64]familiarAccount)
	}
	if len(sh.m) < t.perShard {
		return
	}
	evictLowest(sh.m, func(a familiarAccount) int64 { return a.newest() })
}

// evictLowest deletes from m, a full shard, the entry of lowest score
// among a random sample of evictSample of them (map order is random).
func evictLowest[V any, S cmp.Ordered](m map[uint64]V, score func(V) S) {
	var victim uint64
	var lowest S
	n := 0
	for k, v := range m {
		if sc := score(v); n == 0 || sc < lowest {
			victim, lowest = k, sc
		}
		if n++; n == evictSample {
			break
		}
	}
	delete(m, victim)
}

// len returns the number of accounts.
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
