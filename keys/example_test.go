package keys_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tokend/tokend/keys"
	"github.com/tokend/tokend/store/memory"
)

// A compromised signing key is withdrawn: Revoke stores a new signing key
// and marks the old one revoked. A server's Set refuses the old key at
// once through Check, which reads the store (and reloads the Set), while
// Published answers from the last Reload.
func ExampleRevoke() {
	ctx := context.Background()
	st := memory.New()
	now := time.Now()
	ks, err := keys.Load(ctx, st, keys.EdDSA, time.Hour, now)
	if err != nil {
		panic(err)
	}
	old := ks.ActiveKeyID()

	// What `tokend keys revoke` does, perhaps in another process.
	next, err := keys.Revoke(ctx, st, old, "", now)
	if err != nil {
		panic(err)
	}
	fmt.Println("published before Reload:", ks.Published(old))

	// What the server does before it accepts one of its own tokens.
	err = ks.Check(ctx, old, now)
	fmt.Println("revoked:", errors.Is(err, keys.ErrRevoked))
	fmt.Println("published after Check:", ks.Published(old), "new key signs:", ks.ActiveKeyID() == next.ID)
	// Output:
	// published before Reload: true
	// revoked: true
	// published after Check: false new key signs: true
}
