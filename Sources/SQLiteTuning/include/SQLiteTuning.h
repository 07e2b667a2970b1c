#ifndef PHARMA_MESH_SQLITE_TUNING_H
#define PHARMA_MESH_SQLITE_TUNING_H

// Declared, not included: the Swift side gets `sqlite3` from GRDBSQLite, and one C header seen through two
// modules would give two incompatible Swift types. An incomplete struct imports as `OpaquePointer`.
struct sqlite3;

/// The result code of turning SQLite's memory statistics off when the process started (SQLITE_OK, 0, when
/// it took effect; SQLITE_MISUSE when SQLite had been initialised before).
int pharma_mesh_sqlite_memstatus_result(void);

/// Locks a query connection down: defensive mode on (no writable schema, no shadow-table writes, no
/// journal_mode=OFF tricks), extension loading and the two-argument fts3_tokenizer off, the schema untrusted
/// (functions and virtual tables in a schema must be innocuous), triggers off. `sqlite3_db_config` is
/// variadic, so Swift cannot call it. Returns SQLITE_OK, or the first option that did not take (as a
/// negative number, so the caller can name it) or SQLite's error code.
int pharma_mesh_sqlite_harden(struct sqlite3 *db);

/// The name of a VFS that is SQLite's default one except that the temporary files of sorts, ephemeral tables
/// and spilled temp databases are created in `folder` (unlinked as soon as they are open), never in the
/// system's temporary folder. Registered once per folder and kept for the life of the process; NULL when it
/// could not be registered. Extension loading through it is refused.
const char *pharma_mesh_sqlite_temp_vfs(const char *folder);

#endif
