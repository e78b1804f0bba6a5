package migrations

import "embed"

//go:embed postgres/*.sql
var postgresFS embed.FS

// Postgres returns the schema migrations of the Postgres backend
// (migrations/postgres/NNNN_name.up.sql), checked by Load, in ascending
// version order. The backend applies them in one transaction under an
// advisory lock and records each with its checksum.
func Postgres() ([]Migration, error) {
	return Load(postgresFS, "postgres")
}
