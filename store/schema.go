package store

import "errors"

// Schema errors of the backends' Open when it is told to create and
// migrate nothing (postgres.RequireSchema, sqlite.Options.RequireSchema,
// redis.Options.RequireSchema): the admin commands open stores so, and
// only serve, `tokend migrate` and --init create or upgrade a schema.
var (
	// ErrNoSchema: the database, file or key prefix holds no tokend
	// schema (or the PostgreSQL schema its URL names does not exist).
	ErrNoSchema = errors.New("no tokend schema")
	// ErrSchemaOutdated: the store's schema is older than this build's
	// and must be migrated before it is used.
	ErrSchemaOutdated = errors.New("tokend schema older than this build's")
)
