// The rights of a C function's owner for part of a call, as SECURITY
// DEFINER ... SET search_path = pg_catalog, pg_temp gives them for all of it.
//
// Why: fmgr's SECURITY DEFINER wrapper sets search_path on every call and
// restores it on return, and each change makes the next name lookup rebuild
// the search path, in the function and again in the caller's plan-cache
// check. For a one-row enqueue that was 4-5% of the server's CPU
// (docs/benchmarks.md, W1). enqueue's common path needs neither: it checks
// no privilege and resolves no name by search_path (table AM calls on
// relations found by schema-qualified name). Its other paths run SQL, and
// wrap it in these calls.
//
// Leaving is needed only on success: an error aborts the (sub)transaction,
// which restores the user and unwinds the GUC nest level, as it does for
// SECURITY DEFINER.
//
// C-style on purpose: both can ereport (see guard.h).
#pragma once

extern "C" {
#include "postgres.h"
#include "fmgr.h"
}

namespace jobq::pg {

struct SavedRights {
    Oid user;
    int security_context;
    int guc_nest_level;
};

// From here on, SQL runs as the owner of the called function, with
// search_path = pg_catalog, pg_temp.
void BeginOwnerRights(FunctionCallInfo fcinfo, SavedRights *saved);

// Back to the caller's user and search_path.
void EndOwnerRights(const SavedRights *saved);

}  // namespace jobq::pg
