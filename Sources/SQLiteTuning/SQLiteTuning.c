// Process-wide SQLite settings, applied before anything opens a database, and the parts of the query
// sandbox that only C can reach (variadic sqlite3_db_config, a VFS).
//
// SQLite keeps memory statistics by default (SQLITE_DEFAULT_MEMSTATUS=1): then every sqlite3_malloc and
// sqlite3_free takes one global mutex to update the counters. Two builds on two threads contend for it
// all the time: the demo ran about a sixth faster without it (docs/benchmarks.md). The runtime never reads
// the statistics, so they are turned off. sqlite3_config must run before sqlite3_initialize, which the first
// sqlite3_open calls: a constructor runs when the program is loaded, before main.
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "SQLiteTuning.h"

static int memstatus_result = -1;

__attribute__((constructor)) static void pharma_mesh_sqlite_tuning(void) {
    memstatus_result = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

int pharma_mesh_sqlite_memstatus_result(void) { return memstatus_result; }

int pharma_mesh_sqlite_harden(struct sqlite3 *db) {
    static const struct {
        int option;
        int value;
    } settings[] = {
        {SQLITE_DBCONFIG_DEFENSIVE, 1},
        {SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0},
        {SQLITE_DBCONFIG_ENABLE_FTS3_TOKENIZER, 0},
        {SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0},
        {SQLITE_DBCONFIG_WRITABLE_SCHEMA, 0},
        {SQLITE_DBCONFIG_ENABLE_TRIGGER, 0},
    };
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++) {
        int now = -1;
        int rc = sqlite3_db_config(db, settings[i].option, settings[i].value, &now);
        if (rc != SQLITE_OK) return rc;
        // The option reads back what took effect: a library that ignores it must not pass for one that obeyed.
        if (now != settings[i].value) return -settings[i].option;
    }
    return SQLITE_OK;
}

// A VFS per temporary folder: SQLite's default VFS copied, with xOpen sending nameless (temporary) files
// into the folder. Everything else, the attached published files included, goes to the default VFS as is.
typedef struct TempFolderVfs {
    sqlite3_vfs base;  // first, so that a pointer to it is a pointer to the whole
    sqlite3_vfs *real;
    char *folder;
    struct TempFolderVfs *next;
} TempFolderVfs;

static pthread_mutex_t temp_vfs_lock = PTHREAD_MUTEX_INITIALIZER;
static TempFolderVfs *temp_vfs_list = NULL;

static int temp_folder_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *file, int flags, int *out_flags) {
    TempFolderVfs *self = (TempFolderVfs *)vfs;
    if (name != NULL) return self->real->xOpen(self->real, name, file, flags, out_flags);
    // As SQLite's own unixOpen does for its temporary names: a buffer on the stack, zero-filled so that the
    // name ends in two NULs (sqlite3_uri_parameter reads past the first). The file is unlinked once open
    // (SQLITE_OPEN_DELETEONCLOSE), so nothing is left behind even if the process dies.
    char path[1024];
    memset(path, 0, sizeof path);
    unsigned long long random = 0;
    sqlite3_randomness(sizeof random, &random);
    int length = snprintf(path, sizeof path - 2, "%s/sqlite-%016llx.tmp", self->folder, random);
    if (length < 0 || length >= (int)sizeof path - 2 || length > self->real->mxPathname) return SQLITE_CANTOPEN;
    return self->real->xOpen(self->real, path, file, flags | SQLITE_OPEN_DELETEONCLOSE, out_flags);
}

static void *no_dl_open(sqlite3_vfs *vfs, const char *path) {
    (void)vfs;
    (void)path;
    return NULL;
}

static void no_dl_error(sqlite3_vfs *vfs, int size, char *message) {
    (void)vfs;
    if (size > 0) snprintf(message, (size_t)size, "extensions are not loaded by queries");
}

static void (*no_dl_sym(sqlite3_vfs *vfs, void *handle, const char *symbol))(void) {
    (void)vfs;
    (void)handle;
    (void)symbol;
    return NULL;
}

static void no_dl_close(sqlite3_vfs *vfs, void *handle) {
    (void)vfs;
    (void)handle;
}

const char *pharma_mesh_sqlite_temp_vfs(const char *folder) {
    if (folder == NULL || sqlite3_initialize() != SQLITE_OK) return NULL;
    const char *name = NULL;
    pthread_mutex_lock(&temp_vfs_lock);
    for (TempFolderVfs *v = temp_vfs_list; v != NULL; v = v->next) {
        if (strcmp(v->folder, folder) == 0) {
            name = v->base.zName;
            break;
        }
    }
    if (name == NULL) {
        sqlite3_vfs *real = sqlite3_vfs_find(NULL);
        TempFolderVfs *v = real ? calloc(1, sizeof *v) : NULL;
        size_t size = strlen(folder) + 32;
        char *zName = v ? malloc(size) : NULL;
        char *copy = zName ? strdup(folder) : NULL;
        if (copy != NULL) {
            // The default VFS's methods get this VFS as their first argument: its pAppData stays theirs.
            v->base = *real;
            v->base.pNext = NULL;
            snprintf(zName, size, "pharma-mesh-temp:%s", folder);
            v->base.zName = zName;
            v->base.xOpen = temp_folder_open;
            v->base.xDlOpen = no_dl_open;
            v->base.xDlError = no_dl_error;
            v->base.xDlSym = no_dl_sym;
            v->base.xDlClose = no_dl_close;
            v->real = real;
            v->folder = copy;
            if (sqlite3_vfs_register(&v->base, 0) == SQLITE_OK) {
                v->next = temp_vfs_list;
                temp_vfs_list = v;
                name = zName;
            } else {
                free(copy);
                free(zName);
                free(v);
            }
        } else {
            free(zName);
            free(v);
        }
    }
    pthread_mutex_unlock(&temp_vfs_lock);
    return name;
}
