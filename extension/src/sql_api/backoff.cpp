// jobq.backoff(attempt, base, max, jitter): the retry delay of core/backoff.h
// as an SQL function, so fail and the worker's lease rescue share one formula.
#include "core/backoff.h"
#include "pg/guard.h"
#include "sql_api/args.h"

extern "C" {
#include "common/pg_prng.h"
#include "utils/timestamp.h"
}

extern "C" {

PG_FUNCTION_INFO_V1(jobq_backoff);

Datum jobq_backoff(PG_FUNCTION_ARGS) {
    int32 attempt = PG_GETARG_INT32(0);
    int64 base_us = jobq::sql::IntervalMicros(PG_GETARG_INTERVAL_P(1));
    int64 max_us = jobq::sql::IntervalMicros(PG_GETARG_INTERVAL_P(2));
    double jitter = PG_GETARG_FLOAT8(3);
    double u = pg_prng_double(&pg_global_prng_state);
    int64 delay =
        jobq::pg::CallCpp([&] { return jobq::BackoffMicros(attempt, base_us, max_us, jitter, u); });
    Interval *result = static_cast<Interval *>(palloc0(sizeof(Interval)));
    result->time = delay;
    PG_RETURN_INTERVAL_P(result);
}

}  // extern "C"
