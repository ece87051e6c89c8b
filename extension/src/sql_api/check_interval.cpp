// jobq._check_interval(name text, value interval): the bounds of
// core/validate.h (CheckIntervalSetting) for the PL/pgSQL queue functions,
// so a queue option and a call's argument of the same name are bounded alike.
#include "core/validate.h"
#include "pg/guard.h"
#include "sql_api/args.h"

extern "C" {

PG_FUNCTION_INFO_V1(jobq_check_interval);

Datum jobq_check_interval(PG_FUNCTION_ARGS) {
    jobq::sql::RequireArg(fcinfo, 0, "setting name");
    const char *name = jobq::sql::TextArg(fcinfo, 0);
    if (PG_ARGISNULL(1))
        ereport(ERROR,
                (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("%s must not be null", name)));
    int64 us = jobq::sql::IntervalMicros(PG_GETARG_INTERVAL_P(1));
    jobq::pg::CallCpp([&] { jobq::CheckIntervalSetting(name, us); });
    PG_RETURN_VOID();
}

}  // extern "C"
