package memory_test

import (
	"testing"

	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/memory"
	"github.com/tokend/tokend/store/storetest"
)

func TestImporter(t *testing.T) {
	storetest.RunImporter(t, func(*testing.T) store.Store { return memory.New() })
}
