package valkey

import (
	"fmt"
	"testing"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/internal/testenv"
)

// BenchmarkRotateAll measures rotate_all at 256 partitions and at 1, on a
// standalone server and on a cluster. Each iteration rotates to a new kid
// with grace 0, so the previous kids are collected and the keystore stays
// small.
//
//	go test ./backend/valkey -run '^$' -bench RotateAll
func BenchmarkRotateAll(b *testing.B) {
	for _, s := range servers {
		for _, p := range []int{256, 1} {
			b.Run(fmt.Sprintf("%s/P%d", s.name, p), func(b *testing.B) {
				be := openURL(b, backendURL(b, s.url(b), p, testenv.KeyPrefix(b)), nil)
				mustRotate(b, be, "kid-warm", secret(1), 0)
				b.ResetTimer()
				for i := range b.N {
					mustRotate(b, be, fmt.Sprintf("kid-%d", i), secret(byte(i)), 0)
				}
			})
		}
	}
}

// BenchmarkVerify measures verify: one script call and an HMAC in Go.
func BenchmarkVerify(b *testing.B) {
	for _, s := range servers {
		b.Run(s.name, func(b *testing.B) {
			be := openURL(b, backendURL(b, s.url(b), 256, testenv.KeyPrefix(b)), nil)
			mustSeed(b, be, "kid-a", secret(1))
			msg := []byte("message")
			st, err := be.Sign(bg, contracts.SignArgs{Scope: "scope", Message: msg})
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				if _, err := be.Verify(bg, contracts.VerifyArgs{Scope: "scope", Message: msg, Token: st.Token}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
