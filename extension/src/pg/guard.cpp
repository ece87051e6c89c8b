#include "pg/guard.h"

#include <cstring>

extern "C" {
#include "utils/elog.h"
}

namespace jobq::pg {

namespace {
void CopyText(char *dst, std::size_t size, const char *src) noexcept {
    std::size_t n = src ? std::strlen(src) : 0;
    if (n >= size) n = size - 1;
    if (n) std::memcpy(dst, src, n);
    dst[n] = '\0';
}
}  // namespace

void CaptureFailure(CppFailure &f, const jobq::Error &e) noexcept {
    CopyText(f.sqlstate, sizeof f.sqlstate, e.sqlstate());
    CopyText(f.message, sizeof f.message, e.what());
    CopyText(f.detail, sizeof f.detail, e.detail().c_str());
    CopyText(f.hint, sizeof f.hint, e.hint().c_str());
}

void CaptureFailure(CppFailure &f, const std::exception &e) noexcept {
    CopyText(f.sqlstate, sizeof f.sqlstate, sqlstate::kInternalError);
    CopyText(f.message, sizeof f.message, "jobq internal error");
    CopyText(f.detail, sizeof f.detail, e.what());
    f.hint[0] = '\0';
}

void CaptureUnknownFailure(CppFailure &f) noexcept {
    CopyText(f.sqlstate, sizeof f.sqlstate, sqlstate::kInternalError);
    CopyText(f.message, sizeof f.message, "jobq internal error");
    CopyText(f.detail, sizeof f.detail, "An unknown C++ exception was raised.");
    f.hint[0] = '\0';
}

void RaiseFailure(const CppFailure &f) {
    const char *s = f.sqlstate;
    int code = MAKE_SQLSTATE(s[0], s[1], s[2], s[3], s[4]);
    ereport(ERROR, (errcode(code), errmsg_internal("%s", f.message),
                    f.detail[0] ? errdetail_internal("%s", f.detail) : 0,
                    f.hint[0] ? errhint("%s", f.hint) : 0));
    pg_unreachable();
}

}  // namespace jobq::pg
