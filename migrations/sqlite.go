package migrations

import "embed"

//go:embed sqlite/*.sql
var sqliteFS embed.FS

// SQLite returns the schema migrations of the SQLite backend
// (migrations/sqlite/NNNN_name.up.sql), checked by Load, in ascending
// version order.
func SQLite() ([]Migration, error) {
	return Load(sqliteFS, "sqlite")
}
