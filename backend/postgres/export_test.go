package postgres

import "context"

// ClaimSQL and ClaimSettingsSQL expose the claim statement and the
// settings of its transaction to the plan test.
const (
	ClaimSQL         = claimSQL
	ClaimSettingsSQL = claimSettingsSQL
	ClaimableLeftSQL = claimableLeftSQL
)

// ObserveSQL exposes the observe_signals statement to the plan test.
const ObserveSQL = observeSQL

// CreateMigrationsTableSQL and RecordMigrationSQL let the upgrade test
// migrate a schema part of the way, as an older binary did.
const (
	CreateMigrationsTableSQL = createMigrationsTableSQL
	RecordMigrationSQL       = recordSQL
)

// ListByTagSQL exposes the tag-filtered list_suspended statement to the
// plan test.
const ListByTagSQL = listByTagSQL

// DescribeSQL exposes the describe_execution statement to the plan test.
const DescribeSQL = describeSQL

// CompleteGroups counts the groups of several completes b ran.
func CompleteGroups(b *Backend) int64 { return b.completes.groups.Load() }

// DeliverGroups counts the groups of several deliveries b ran.
func DeliverGroups(b *Backend) int64 { return b.deliveries.groups.Load() }

// SuspendGroups counts the groups of several suspends b ran.
func SuspendGroups(b *Backend) int64 { return b.suspends.groups.Load() }

// ClaimGroups counts the groups of several claims b ran.
func ClaimGroups(b *Backend) int64 { return b.claims.groups.Load() }

// ListSuspendedSQL exposes the list_suspended statement to the plan test.
const ListSuspendedSQL = listSuspendedSQL

// PreparedPlans reports how often a connection of b's pool ran the
// prepared statement of sql with a generic and with a custom plan
// (pg_prepared_statements, which is per session: give b a pool of one
// connection).
func PreparedPlans(ctx context.Context, b *Backend, sql string) (generic, custom int64, err error) {
	err = b.pool.QueryRow(ctx, `SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement = $1`, sql).Scan(&generic, &custom)
	return generic, custom, err
}
