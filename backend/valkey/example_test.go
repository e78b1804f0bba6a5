package valkey_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/redis/go-redis/v9"

	"github.com/flowfabric/flowfabric-go/backend/valkey"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
)

// An application that already has a go-redis client builds its Engine on
// it: the store shares the client's connections, credentials, TLS and
// hooks. The Backend never closes the client; the application does, after
// the Engine.
func ExampleNew() {
	ctx := context.Background()
	client := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:                 []string{os.Getenv("VALKEY_ADDR")}, // several addresses: a cluster
		Password:              os.Getenv("VALKEY_PASSWORD"),
		ContextTimeoutEnabled: true, // as Open sets it: deadlines bound socket I/O
	})
	defer client.Close()
	b, err := valkey.New(ctx, client, valkey.WithPrefix("orders:"), valkey.WithPartitions(64))
	if err != nil {
		log.Fatal(err)
	}
	eng := engine.New(b)
	defer eng.Close()

	if _, err := eng.Seed(ctx, contracts.SeedArgs{Kid: "k1", Secret: contracts.Secret(os.Getenv("FF_SECRET"))}); err != nil {
		log.Fatal(err)
	}
	s, err := eng.Suspend(ctx, contracts.SuspendArgs{
		ExecutionID: "order-7",
		Waitpoints:  []contracts.WaitpointSpec{{Key: "approve"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("approve with", s.Waitpoints[0].Token)
}
