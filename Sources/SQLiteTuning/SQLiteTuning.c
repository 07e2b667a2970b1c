// Process-wide SQLite settings, applied before anything opens a database.
//
// SQLite keeps memory statistics by default (SQLITE_DEFAULT_MEMSTATUS=1): then every sqlite3_malloc and
// sqlite3_free takes one global mutex to update the counters. Two builds on two threads contend for it
// all the time: the demo ran about a sixth faster without it (docs/benchmarks.md). The runtime never reads
// the statistics, so they are turned off. sqlite3_config must run before sqlite3_initialize, which the first
// sqlite3_open calls: a constructor runs when the program is loaded, before main.
#include <sqlite3.h>

#include "SQLiteTuning.h"

static int memstatus_result = -1;

__attribute__((constructor)) static void pharma_mesh_sqlite_tuning(void) {
    memstatus_result = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

int pharma_mesh_sqlite_memstatus_result(void) { return memstatus_result; }
