#include "sql_api/args.h"

extern "C" {
#include "access/xact.h"
#include "utils/builtins.h"
}

namespace jobq::sql {

void RequireArg(FunctionCallInfo fcinfo, int n, const char *name) {
    if (PG_ARGISNULL(n))
        ereport(ERROR,
                (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("%s must not be null", name)));
}

int64 IntervalMicros(const Interval *interval) {
    // In double, then clamped: only the sign and rough size matter for checks,
    // and huge intervals must not overflow.
    double total = static_cast<double>(interval->time) +
                   static_cast<double>(interval->day) * USECS_PER_DAY +
                   static_cast<double>(interval->month) * DAYS_PER_MONTH * USECS_PER_DAY;
    if (total > static_cast<double>(PG_INT64_MAX)) return PG_INT64_MAX;
    if (total < static_cast<double>(PG_INT64_MIN)) return PG_INT64_MIN;
    return static_cast<int64>(total);
}

TimestampTz NowPlus(Interval *interval) {
    Datum now = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
    return DatumGetTimestampTz(
        DirectFunctionCall2(timestamptz_pl_interval, now, PointerGetDatum(interval)));
}

char *TextArg(FunctionCallInfo fcinfo, int n) { return text_to_cstring(PG_GETARG_TEXT_PP(n)); }

}  // namespace jobq::sql
