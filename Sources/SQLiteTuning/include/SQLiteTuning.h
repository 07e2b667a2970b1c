#ifndef PHARMA_MESH_SQLITE_TUNING_H
#define PHARMA_MESH_SQLITE_TUNING_H

/// The result code of turning SQLite's memory statistics off when the process started (SQLITE_OK, 0, when
/// it took effect; SQLITE_MISUSE when SQLite had been initialised before).
int pharma_mesh_sqlite_memstatus_result(void);

#endif
