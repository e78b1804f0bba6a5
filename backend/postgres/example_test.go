package postgres_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/flowfabric/flowfabric-go/backend/postgres"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
)

// An application that already has a pgx pool builds its Engine on it, and
// suspends inside its own transaction: the order row and the wait commit
// together, or neither does. The token is handed out after the commit.
func ExampleNew_suspendTx() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	b, err := postgres.New(ctx, pool, postgres.WithMigrate())
	if err != nil {
		log.Fatal(err)
	}
	eng := engine.New(b)
	defer eng.Close()

	tx, err := pool.Begin(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	if _, err := tx.Exec(ctx, `UPDATE orders SET status = 'awaiting approval' WHERE id = $1`, "order-7"); err != nil {
		log.Fatal(err)
	}
	s, err := eng.SuspendTx(ctx, tx, contracts.SuspendArgs{
		ExecutionID: "order-7",
		Waitpoints:  []contracts.WaitpointSpec{{Key: "approve"}},
	})
	if err != nil {
		log.Fatal(err) // the transaction is still usable after a refusal
	}
	if err := tx.Commit(ctx); err != nil {
		log.Fatal(err) // nothing of the suspension is left either
	}
	fmt.Println("send the approver", s.Waitpoints[0].Token)
}
