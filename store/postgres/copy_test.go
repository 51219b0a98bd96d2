package postgres_test

import (
	"testing"
	"time"

	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/storetest"
)

// On the database's clock, so that ImportFamily is seen not to rebase.
func TestImporter(t *testing.T) {
	storetest.RunImporter(t, func(t *testing.T) store.Store { return open(t, newSchema(t)) })
}

// A schema created at this version holds no legacy token.
func TestCountLegacyTokens(t *testing.T) {
	if n, err := open(t, newSchema(t)).CountLegacyTokens(t.Context(), time.Now()); err != nil || n != 0 {
		t.Fatalf("CountLegacyTokens: %d, %v", n, err)
	}
}
