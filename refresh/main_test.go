package refresh_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a goroutine the tests started outlives them
// (as coder/websocket's does): a Source or a connection that does not
// stop what it starts leaks in every program that uses it.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
