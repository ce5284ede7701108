#ifndef DROVER_CSQLITE_SHIM_H
#define DROVER_CSQLITE_SHIM_H
// The system's SQLite (libsqlite3-dev, pkg-config: sqlite3), for the embedded backend.
#include <sqlite3.h>

// SQLITE_TRANSIENT is a macro Swift cannot import: bound text is copied by SQLite.
static inline void (*drover_sqlite_transient(void))(void *) { return SQLITE_TRANSIENT; }
#endif
