package store

import "context"

// Scrubber is implemented by a store that keeps its records in files of
// its own (sqlite): a value it overwrites or deletes may linger in them,
// in free space and in a journal, until Scrub removes it. Stores whose
// files a database server keeps (postgres, redis) do not implement it;
// see the sealed package for what an operator does about those.
type Scrubber interface {
	// Scrub rewrites the store's files so that they hold only what the
	// store holds now: no copy of a value since overwritten or deleted
	// (a key or secret in clear before RewriteSecrets sealed it, a value
	// sealed under a retired operator key, a retired server secret). It
	// waits for other connections' reads, which may pin old copies, until
	// ctx ends; if it could not finish by then, it returns an error
	// wrapping ErrUnavailable that says which file may still hold them,
	// and a later Scrub may finish. What the store holds never changes.
	Scrub(ctx context.Context) error
}
