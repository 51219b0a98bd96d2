package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/storetest"
)

func TestImporter(t *testing.T) {
	storetest.RunImporter(t, func(t *testing.T) store.Store { return open(t, filepath.Join(t.TempDir(), "t.db")) })
}
