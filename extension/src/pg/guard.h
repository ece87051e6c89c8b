// The C++/Postgres boundary. Two guards, used by every file that calls both
// worlds (see STYLE.md "boundary rules"):
//
//   CallCpp(fn)  runs pure C++ (no Postgres calls that can ereport) and turns
//                any exception into ereport(ERROR) *after* the catch scope has
//                closed, so no longjmp ever leaves a catch handler and no C++
//                destructor is skipped.
//   CallPg(fn)   the inverse: runs Postgres code from C++ that has live
//                objects, and turns an ERROR into a jobq::PgError exception.
//                The transaction is left aborted; the caller must roll back.
//
// Error messages are copied into fixed buffers, never palloc'd inside a catch.
#pragma once

#include <string>
#include <utility>

#include "core/error.h"

extern "C" {
#include "postgres.h"
#include "utils/elog.h"
#include "utils/memutils.h"
}

namespace jobq::pg {

struct CppFailure {
    char sqlstate[6];
    char message[1024];
    char detail[1024];
    char hint[512];
};

void CaptureFailure(CppFailure &f, const jobq::Error &e) noexcept;
void CaptureFailure(CppFailure &f, const std::exception &e) noexcept;
void CaptureUnknownFailure(CppFailure &f) noexcept;
// ereport(ERROR) from a captured failure; call only outside any catch scope.
[[noreturn]] void RaiseFailure(const CppFailure &f);

template <typename Fn>
auto CallCpp(Fn &&fn) -> decltype(fn()) {
    CppFailure failure;
    try {
        return std::forward<Fn>(fn)();
    } catch (const jobq::Error &e) {
        CaptureFailure(failure, e);
    } catch (const std::exception &e) {
        CaptureFailure(failure, e);
    } catch (...) {
        CaptureUnknownFailure(failure);
    }
    RaiseFailure(failure);
}

// A Postgres ERROR caught by CallPg, as a C++ exception.
class PgError : public jobq::Error {
public:
    using jobq::Error::Error;
};

[[noreturn]] void ThrowPgError(ErrorData *edata);

template <typename Fn>
void CallPg(Fn &&fn) {
    MemoryContext caller_context = CurrentMemoryContext;
    ErrorData *volatile edata = nullptr;
    PG_TRY();
    {
        fn();
    }
    PG_CATCH();
    {
        MemoryContextSwitchTo(caller_context);
        edata = CopyErrorData();
        FlushErrorState();
    }
    PG_END_TRY();
    if (edata != nullptr) ThrowPgError(edata);
}

}  // namespace jobq::pg
