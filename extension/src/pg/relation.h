// Finding jobq's own relations and columns from C.
//
// C-style on purpose: both raise (elog) when the extension's objects are
// not what this build expects (see guard.h).
#pragma once

extern "C" {
#include "postgres.h"
#include "utils/relcache.h"
}

namespace jobq::pg {

// The OID of relation jobq.<name> (table, index or sequence).
Oid JobqRelid(const char *name);

// The attribute number of `column` in `rel`.
AttrNumber ColumnOf(Relation rel, const char *column);

}  // namespace jobq::pg
