// jobq::Error: the one exception type of the project. It carries a
// five-character SQLSTATE so the Postgres boundary (pg/guard.h) can raise the
// right errcode, plus optional detail and hint sentences.
#pragma once
#include "core/pure_cpp.h"

#include <stdexcept>
#include <string>

namespace jobq {

// SQLSTATEs we raise, spelled out (Postgres' errcodes.h is not visible here).
namespace sqlstate {
inline constexpr const char *kInvalidParameterValue = "22023";
inline constexpr const char *kNullValueNotAllowed = "22004";
inline constexpr const char *kProgramLimitExceeded = "54000";
inline constexpr const char *kUndefinedObject = "42704";
inline constexpr const char *kDuplicateObject = "42710";
inline constexpr const char *kObjectNotInPrerequisiteState = "55000";
inline constexpr const char *kInvalidName = "42602";
inline constexpr const char *kArraySubscriptError = "2202E";
inline constexpr const char *kInternalError = "XX000";
}  // namespace sqlstate

class Error : public std::runtime_error {
  public:
    Error(const char *sqlstate, std::string message, std::string detail = {}, std::string hint = {})
        : std::runtime_error(std::move(message)),
          detail_(std::move(detail)),
          hint_(std::move(hint)) {
        for (int i = 0; i < 5; ++i) sqlstate_[i] = sqlstate[i];
        sqlstate_[5] = '\0';
    }
    const char *sqlstate() const noexcept { return sqlstate_; }
    const std::string &detail() const noexcept { return detail_; }
    const std::string &hint() const noexcept { return hint_; }

  private:
    char sqlstate_[6];
    std::string detail_;
    std::string hint_;
};

}  // namespace jobq
