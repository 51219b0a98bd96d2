package nativelogin_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a goroutine outlives the tests: Login starts a
// server for the redirect and must stop it whatever the outcome.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
