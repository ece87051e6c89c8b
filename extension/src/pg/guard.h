// The C++/Postgres boundary: the one guard every entry point that runs
// C++ uses (see docs/architecture.md).
//
//   CallCpp(fn)  runs pure C++ (no Postgres calls that can ereport) and turns
//                any exception into ereport(ERROR) *after* the catch scope has
//                closed, so no longjmp ever leaves a catch handler and no C++
//                destructor is skipped.
//
// The other direction has no guard: code that calls Postgres functions that
// can ereport (palloc, SPI, catalog and table access, CHECK_FOR_INTERRUPTS)
// keeps no C++ objects with destructors in scope, so an ERROR's longjmp
// skips nothing. Such files say "C-style on purpose".
//
// Error messages are copied into fixed buffers, never palloc'd inside a catch.
#pragma once

#include <utility>

#include "core/error.h"

extern "C" {
#include "postgres.h"
#include "utils/elog.h"
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

}  // namespace jobq::pg
