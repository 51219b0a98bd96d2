package sealed_test

import (
	"bytes"
	"context"
	"fmt"

	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/memory"
	"github.com/tokend/tokend/store/sealed"
)

// A store behind Wrap holds signing keys sealed; through the wrapper they
// come back in clear.
func ExampleWrap() {
	ctx := context.Background()
	// In production: sealed.LoadKeyFile("/etc/tokend/key").
	key, err := sealed.NewKey(bytes.Repeat([]byte{7}, sealed.KeySize))
	if err != nil {
		panic(err)
	}
	inner := memory.New()
	st := sealed.Wrap(inner, sealed.Keyring{Current: key})
	if err := st.CreateKey(ctx, store.Key{ID: "kid-1", Algorithm: "EdDSA", Private: []byte("PKCS #8 DER")}); err != nil {
		panic(err)
	}
	mine, _ := st.ListKeys(ctx)
	stored, _ := inner.ListKeys(ctx)
	fmt.Printf("through the wrapper: %q\n", mine[0].Private)
	fmt.Printf("stored: %q..., %d bytes\n", stored[0].Private[:4], len(stored[0].Private))
	recs, _ := sealed.Inspect(ctx, inner)
	fmt.Printf("%s %s sealed under %s (%v)\n", recs[0].Kind, recs[0].Name, recs[0].KeyID, key)
	// Output:
	// through the wrapper: "PKCS #8 DER"
	// stored: "tks1"..., 47 bytes
	// key kid-1 sealed under 4bb06f8e (operator key 4bb06f8e)
}
