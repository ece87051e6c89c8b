// Transactions of the worker processes: one short transaction per unit of
// work, and the one place where an ERROR inside a unit is caught.
//
// Error policy of every jobq worker process (launcher excepted):
//   - A unit of work (a wake-up tick, a rescue batch, a prune batch, a
//     schedule pass, one in-database job) runs inside RunUnit(). An ERROR
//     raised in it (SQL error, lock timeout, a C++ exception turned into an
//     ERROR by pg/guard.h) is logged with its SQLSTATE, its transaction is
//     rolled back, and the loop goes on: the unit is retried at its next
//     deadline. Every unit is idempotent, so a retry is always safe.
//   - FATAL (SIGTERM, pg_terminate_backend, postmaster death) ends the
//     process; the launcher (for database workers) or the database worker
//     (for handler workers) starts a new one, whose start-up reconciliation
//     (rescue, wake-up of every due queue) is idempotent as well.
//   - Nothing here uses C++ objects with destructors: these files are
//     C-style, so no longjmp can skip a destructor.
#pragma once

#include "pg/spi.h"

extern "C" {
#include "postgres.h"
#include "executor/spi.h"
}

namespace jobq::worker {

// Starts a transaction with SPI connected and a snapshot pushed. Returns
// false (transaction still open) if the jobq extension is not installed.
bool BeginWork(const char *activity);
// Commits: SPI_finish, pop snapshot, commit, report stats and idleness.
void EndWork();

// Runs unit(arg); on ERROR logs it, rolls back, returns false.
typedef void (*UnitFn)(void *arg);
bool RunUnit(const char *what, UnitFn unit, void *arg);

// Statements run inside BeginWork/EndWork: the named ones of statements.h
// with pg::ExecPlan (which raises on SPI failure), and these two.
//
// The first column of the first row of `stmt` as an int64 (0, *isnull set,
// when there is no row or it is NULL).
int64 ExecInt64(pg::PlanSlot *stmt, Datum *values, const char *nulls, bool *isnull);
// A statement whose text is built at run time (an in-database handler's
// call): parsed and planned every call; raises unless SPI answers `expect`.
void ExecDynamic(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls,
                 int expect);

}  // namespace jobq::worker
