// Package sqlitetest helps tests look inside an SQLite store's files.
package sqlitetest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// Holding returns the files of the SQLite database at path (the database,
// its -wal and -shm, and a -journal if there is one) that hold a
// byte-for-byte copy of one of values, as "tokend.db-wal: value 2" (the
// index in values); nil if none does. A file that cannot be read fails
// tb.
func Holding(tb testing.TB, path string, values [][]byte) []string {
	tb.Helper()
	var found []string
	for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
		b, err := os.ReadFile(path + suffix)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			tb.Fatal(err)
		}
		for i, v := range values {
			if bytes.Contains(b, v) {
				found = append(found, fmt.Sprintf("%s: value %d", filepath.Base(path+suffix), i))
			}
		}
	}
	return found
}
