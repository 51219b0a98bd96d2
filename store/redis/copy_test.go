package redis_test

import (
	"testing"

	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/storetest"
)

// On the Redis server's clock, so that ImportFamily is seen not to rebase.
func TestImporter(t *testing.T) {
	storetest.RunImporter(t, func(t *testing.T) store.Store { return open(t, newPrefix(t), nil) })
}
