package postgres_test

import (
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/postgres"
	"github.com/tokend/tokend/store/storetest"
)

// An outage of the database, simulated by cutting a proxy between the
// store and the shared server: see storetest.RunOutage.
func TestOutage(t *testing.T) {
	u := newSchema(t)
	p := storetest.NewProxy(t, "127.0.0.1:5432")
	u = strings.Replace(u, "127.0.0.1:5432", p.Addr(), 1)
	s, err := postgres.Open(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	storetest.RunOutage(t, s, p)
}

// A link to the database that holds bytes (a partition) or resets
// connections, under a store deadline of 200ms: every call, on pooled
// and on new connections, fails with store.ErrUnavailable within it. See
// storetest.RunDeadline.
func TestDeadline(t *testing.T) {
	for _, mode := range []string{"stall", "cut"} {
		t.Run(mode, func(t *testing.T) {
			p := storetest.NewProxy(t, "127.0.0.1:5432")
			s, err := postgres.Open(t.Context(), strings.Replace(newSchema(t), "127.0.0.1:5432", p.Addr(), 1))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			storetest.RunDeadline(t, store.WithTimeout(s, 200*time.Millisecond), p, 200*time.Millisecond, mode == "stall")
		})
	}
}
