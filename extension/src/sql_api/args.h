// Argument reading shared by the SQL entry points: NULL checks with a clear
// error naming the argument, and conversions of Postgres values into the
// plain integers that core/ validates.
#pragma once

extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "datatype/timestamp.h"
#include "utils/timestamp.h"
}

namespace jobq::sql {

// Raises "<name> must not be null" unless argument `n` is non-null.
void RequireArg(FunctionCallInfo fcinfo, int n, const char *name);

// Interval as microseconds (months as 30 days, days as 24 hours), for checks.
int64 IntervalMicros(const Interval *interval);

// now() + interval, on the database clock (transaction start time).
TimestampTz NowPlus(Interval *interval);

// Text argument as a palloc'd C string.
char *TextArg(FunctionCallInfo fcinfo, int n);

}  // namespace jobq::sql
