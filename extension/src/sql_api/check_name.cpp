// jobq._check_queue_name(text): the queue-name rule of core/validate.h for
// the PL/pgSQL admin functions, so every entry point rejects names alike.
#include "core/validate.h"
#include "pg/guard.h"
#include "sql_api/args.h"

extern "C" {

PG_FUNCTION_INFO_V1(jobq_check_queue_name);

Datum jobq_check_queue_name(PG_FUNCTION_ARGS) {
    jobq::sql::RequireArg(fcinfo, 0, "queue name");
    const char *name = jobq::sql::TextArg(fcinfo, 0);
    jobq::pg::CallCpp([&] { jobq::CheckQueueName(name); });
    PG_RETURN_VOID();
}

}  // extern "C"
