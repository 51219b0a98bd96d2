package server_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a goroutine the tests started outlives them:
// a server that does not stop what it starts leaks in production too.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
