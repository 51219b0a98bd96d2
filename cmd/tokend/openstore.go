package main

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/memory"
	"github.com/tokend/tokend/store/sqlite"
)

// openStore opens the store a URL names: sqlite:///abs/path.db,
// sqlite://relative.db or memory:.
func openStore(ctx context.Context, raw string) (store.Store, error) {
	scheme, _, ok := strings.Cut(raw, ":")
	if !ok {
		return nil, fmt.Errorf("store URL %q: use sqlite:///path/tokend.db or memory: instead", raw)
	}
	switch scheme {
	case "memory":
		return memory.New(), nil
	case "sqlite":
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("store URL: %w", err)
		}
		path := u.Host + u.Path // sqlite://rel.db → rel.db; sqlite:///abs → /abs
		if path == "" {
			return nil, fmt.Errorf("store URL %q names no file", raw)
		}
		return sqlite.Open(ctx, path)
	default:
		return nil, fmt.Errorf("store URL %q: unknown scheme %q (PostgreSQL and Redis are not supported yet)", raw, scheme)
	}
}
