package main

import (
	"testing"
	"time"

	"github.com/tokend/tokend/wsconn"
)

// The example itself, in real time: a client that chats for longer than a
// token lives renews without a disconnect, in both modes. run fails if it
// saw a disconnect or no renewal.
func TestChatOutlivesItsTokens(t *testing.T) {
	for name, mode := range map[string]wsconn.Renewal{"in-band": wsconn.RenewInBand, "make-before-break": wsconn.RenewMakeBeforeBreak} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if err := run(t.Context(), 5*time.Second, 6*time.Second, mode); err != nil {
				t.Fatal(err)
			}
		})
	}
}
