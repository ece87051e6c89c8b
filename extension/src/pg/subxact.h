// TryInSubtransaction: runs Postgres code in a subtransaction and reports
// an ERROR instead of propagating it, the way PL/pgSQL runs a block with an
// EXCEPTION clause. Used to isolate the jobs of one settle batch
// (sql_api/settle_isolated.cpp).
//
// fn must be C-style code (no C++ object with a destructor alive while it
// runs): an ERROR longjmps out of it to the PG_CATCH here. After either
// outcome the caller's memory context and resource owner are current again;
// on ERROR, everything fn did in the database is rolled back, and memory it
// allocated in the caller's context stays (so results must be emitted only
// once fn has succeeded).
#pragma once

extern "C" {
#include "postgres.h"
#include "access/xact.h"
#include "utils/elog.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
}

namespace jobq::pg {

// True when fn() succeeded (its subtransaction is folded into the caller's
// transaction); false when it raised an ERROR: the subtransaction is rolled
// back and *error is a copy of the error, in the caller's memory context.
template <typename Fn>
bool TryInSubtransaction(Fn &&fn, ErrorData **error) {
    MemoryContext caller_context = CurrentMemoryContext;
    ResourceOwner caller_owner = CurrentResourceOwner;
    volatile bool ok = true;
    BeginInternalSubTransaction(nullptr);
    MemoryContextSwitchTo(caller_context);
    PG_TRY();
    {
        fn();
        ReleaseCurrentSubTransaction();
        MemoryContextSwitchTo(caller_context);
        CurrentResourceOwner = caller_owner;
    }
    PG_CATCH();
    {
        MemoryContextSwitchTo(caller_context);
        *error = CopyErrorData();
        FlushErrorState();
        RollbackAndReleaseCurrentSubTransaction();
        MemoryContextSwitchTo(caller_context);
        CurrentResourceOwner = caller_owner;
        ok = false;
    }
    PG_END_TRY();
    return ok;
}

}  // namespace jobq::pg
