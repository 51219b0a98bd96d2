package postgres

import (
	"testing"

	"github.com/tokend/tokend/store/postgres/pgtest"
)

// The pool has DefaultMaxConns connections unless the URL says otherwise.
func TestPoolSize(t *testing.T) {
	u := pgtest.ServerURL + pgtest.Schema(t)
	for _, c := range []struct {
		extra string
		want  int32
	}{{"", DefaultMaxConns}, {"&pool_max_conns=3", 3}} {
		s, err := Open(t.Context(), u+c.extra)
		if err != nil {
			t.Fatal(err)
		}
		got := s.pool.Config().MaxConns
		_ = s.Close()
		if got != c.want {
			t.Errorf("URL with %q: pool of %d connections, want %d", c.extra, got, c.want)
		}
	}
}
