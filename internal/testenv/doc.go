// Package testenv gives tests real, isolated PostgreSQL and Valkey servers.
//
// Each server is found in this order:
//
//  1. an environment variable: FF_TEST_POSTGRES_URL, FF_TEST_VALKEY_URL or
//     FF_TEST_VALKEY_CLUSTER_URL (`make test` sets them by starting ephemeral
//     servers with scripts/test-servers.sh);
//  2. otherwise a container started through testcontainers-go, when a Docker
//     engine answers (once per test process; not for the Valkey cluster);
//  3. otherwise the test is skipped with a message naming the variable —
//     except when CI=true, where a missing server fails the test instead, so
//     a misconfigured CI run can never pass by skipping everything.
//
// Isolation: PostgreSQL tests get a fresh database (NewPostgresDatabase,
// PackageDatabase) and, inside it, a fresh schema per test
// (NewPostgresSchema). Valkey tests get a unique key prefix per test
// (KeyPrefix, ValkeyPrefix); the keys under it are deleted when the test ends.
//
// A package that uses PackageDatabase should declare
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
// so that the database is dropped when the test binary exits.
package testenv
