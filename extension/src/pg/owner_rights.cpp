#include "pg/owner_rights.h"

extern "C" {
#include "catalog/pg_proc.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/syscache.h"
}

namespace jobq::pg {

void BeginOwnerRights(FunctionCallInfo fcinfo, SavedRights *saved) {
    Oid function = fcinfo->flinfo->fn_oid;
    HeapTuple proc = SearchSysCache1(PROCOID, ObjectIdGetDatum(function));
    if (!HeapTupleIsValid(proc)) elog(ERROR, "jobq: cache lookup failed for function %u", function);
    Oid owner = reinterpret_cast<Form_pg_proc>(GETSTRUCT(proc))->proowner;
    ReleaseSysCache(proc);

    // In fmgr_security_definer's order: the user, then the settings.
    GetUserIdAndSecContext(&saved->user, &saved->security_context);
    SetUserIdAndSecContext(owner, saved->security_context | SECURITY_LOCAL_USERID_CHANGE);
    saved->guc_nest_level = NewGUCNestLevel();
    set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
                      GUC_ACTION_SAVE, true, 0, false);
}

void EndOwnerRights(const SavedRights *saved) {
    AtEOXact_GUC(true, saved->guc_nest_level);
    SetUserIdAndSecContext(saved->user, saved->security_context);
}

}  // namespace jobq::pg
