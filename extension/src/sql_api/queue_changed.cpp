// jobq._queue_changed(): the statement trigger on jobq.queue that keeps
// the per-backend queue caches (store/queue_cache.h) true.
#include "store/queue_cache.h"

extern "C" {
#include "postgres.h"

#include "commands/trigger.h"
#include "fmgr.h"
}

extern "C" {

PG_FUNCTION_INFO_V1(jobq_queue_changed);

Datum jobq_queue_changed(PG_FUNCTION_ARGS) {
    if (!CALLED_AS_TRIGGER(fcinfo))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("jobq._queue_changed() must be called as a trigger")));
    jobq::store::InvalidateQueueCaches(
        reinterpret_cast<TriggerData *>(fcinfo->context)->tg_relation);
    return PointerGetDatum(nullptr);
}

}  // extern "C"
