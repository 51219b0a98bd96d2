package postgres_test

import (
	"strings"
	"testing"

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
