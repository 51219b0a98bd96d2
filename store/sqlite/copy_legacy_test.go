package sqlite_test

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// A database upgraded from version 1 counts the active families whose
// current token is a legacy one, which a copy does not move.
func TestCountLegacyTokens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokend.db")
	at := v1.UnixMicro()
	h0, h1 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	createV1(t, path,
		fmt.Sprintf("INSERT INTO clients VALUES ('app', x'0102', 'refresh_token password', 'read', 1, %d)", at),
		fmt.Sprintf("INSERT INTO families VALUES ('f', 'app', 'alice', 'read', NULL, 0, %d, %d, %d, %d, 1, NULL, '')", at, at, at+3600e6, at+86400e6),
		fmt.Sprintf("INSERT INTO families VALUES ('g', 'app', 'bob', 'read', NULL, 0, %d, %d, %d, %d, 0, NULL, '')", at, at, at+3600e6, at+86400e6),
		fmt.Sprintf("INSERT INTO refresh_tokens VALUES (x'%x', 'f', 0, %d, %d, x'%x'), (x'%x', 'f', 1, %d, NULL, NULL)", h0, at, at, h1, h1, at),
	)
	s := open(t, path)
	for _, tc := range []struct {
		at   time.Time
		want int
	}{{v1, 1}, {v1.Add(2 * time.Hour), 0}} {
		if n, err := s.CountLegacyTokens(t.Context(), tc.at); err != nil || n != tc.want {
			t.Errorf("CountLegacyTokens at %v: %d, %v; want %d", tc.at, n, err, tc.want)
		}
	}
}
