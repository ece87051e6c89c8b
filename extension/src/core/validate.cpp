#include "core/validate.h"

#include <fmt/format.h>

#include "core/error.h"

namespace jobq {

void CheckQueueName(std::string_view name) {
    if (name.empty())
        throw Error(sqlstate::kInvalidName, "queue name must not be empty");
    if (name.size() > kMaxQueueNameLength)
        throw Error(sqlstate::kInvalidName,
                    fmt::format("queue name is too long ({} bytes)", name.size()),
                    fmt::format("Queue names have at most {} bytes.", kMaxQueueNameLength));
    auto ok_first = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
    auto ok_rest = [&](char c) { return ok_first(c) || c == '_' || c == '.' || c == '-'; };
    bool valid = ok_first(name[0]);
    for (char c : name.substr(1)) valid = valid && ok_rest(c);
    if (!valid)
        throw Error(sqlstate::kInvalidName, "invalid queue name",
                    "Queue names consist of lower-case letters, digits, \"_\", \".\" and \"-\", "
                    "and start with a letter or digit.");
}

void CheckWorkerName(std::string_view name) {
    if (name.empty())
        throw Error(sqlstate::kInvalidParameterValue, "worker name must not be empty");
    if (name.size() > kMaxWorkerNameLength)
        throw Error(sqlstate::kInvalidParameterValue,
                    fmt::format("worker name is too long ({} bytes)", name.size()),
                    fmt::format("Worker names have at most {} bytes.", kMaxWorkerNameLength));
}

void CheckClaimBatch(int64_t max_jobs) {
    if (max_jobs < 1 || max_jobs > kMaxClaimBatch)
        throw Error(sqlstate::kInvalidParameterValue,
                    fmt::format("max_jobs must be between 1 and {}", kMaxClaimBatch));
}

void CheckMaxAttempts(int64_t max_attempts) {
    if (max_attempts < 1 || max_attempts > kMaxAttemptsLimit)
        throw Error(sqlstate::kInvalidParameterValue,
                    fmt::format("max_attempts must be between 1 and {}", kMaxAttemptsLimit));
}

void CheckPriority(int64_t priority) {
    if (priority < -32768 || priority > 32767)
        throw Error(sqlstate::kInvalidParameterValue,
                    "priority must be between -32768 and 32767");
}

void CheckPayloadSize(std::size_t bytes, std::size_t limit) {
    if (bytes > limit)
        throw Error(sqlstate::kProgramLimitExceeded,
                    fmt::format("payload is too large ({} bytes)", bytes),
                    fmt::format("The limit is {} bytes, set by jobq.max_payload_size.", limit),
                    "Store large data in a table and enqueue its key.");
}

namespace {
constexpr int64_t kMs = 1000;
constexpr int64_t kSecond = 1000 * kMs;
constexpr int64_t kDay = 86400 * kSecond;
constexpr int64_t kYear = 360 * kDay;  // 12 months of 30 days

constexpr IntervalBounds kIntervalBounds[] = {
    {"lease", kSecond, 7 * kDay, "1 second", "7 days"},
    {"backoff_base", kMs, kDay, "1 millisecond", "1 day"},
    {"backoff_max", kMs, 30 * kDay, "1 millisecond", "30 days"},
    {"retention", 0, 10 * kYear, "0", "10 years"},
    {"handler_timeout", 100 * kMs, kDay, "100 milliseconds", "1 day"},
    {"retry_in", 0, 10 * kYear, "0", "10 years"},
    {"delay", 0, 10 * kYear, "0", "10 years"},
    {"debounce", kMs, 10 * kYear, "1 millisecond", "10 years"},
    {"unique_window", kMs, 10 * kYear, "1 millisecond", "10 years"},
};
}  // namespace

const IntervalBounds *FindIntervalBounds(std::string_view name) {
    for (const IntervalBounds &b : kIntervalBounds)
        if (name == b.name) return &b;
    return nullptr;
}

void CheckIntervalSetting(std::string_view name, int64_t microseconds) {
    const IntervalBounds *b = FindIntervalBounds(name);
    if (b == nullptr)
        throw Error(sqlstate::kInvalidParameterValue,
                    fmt::format("\"{}\" is not an interval setting", name));
    if (microseconds < b->min_us || microseconds > b->max_us)
        throw Error(sqlstate::kInvalidParameterValue,
                    fmt::format("{} must be between {} and {}", name, b->min_text, b->max_text));
}

void CheckUniqueKeyLength(std::string_view what, std::size_t bytes) {
    if (bytes > kMaxUniqueKeyLength)
        throw Error(sqlstate::kProgramLimitExceeded,
                    fmt::format("{} is too long ({} bytes)", what, bytes),
                    fmt::format("Unique keys have at most {} bytes.", kMaxUniqueKeyLength),
                    "Use a digest of a longer key, such as md5(key).");
}

UniqueMode ParseUniqueMode(std::string_view mode) {
    if (mode == "keep") return UniqueMode::kKeep;
    if (mode == "replace") return UniqueMode::kReplace;
    if (mode == "debounce") return UniqueMode::kDebounce;
    throw Error(sqlstate::kInvalidParameterValue,
                fmt::format("invalid unique_mode \"{}\"", mode),
                "Valid modes are \"keep\", \"replace\" and \"debounce\".");
}

void CheckSameLength(const char *what, int64_t expected, int64_t actual) {
    if (expected != actual)
        throw Error(sqlstate::kArraySubscriptError,
                    fmt::format("{} has {} elements, expected {}", what, actual, expected),
                    "Each id needs its own lease token (and result or error, if given).");
}

bool IsValidLiveJobRow(const LiveJobRow &row) noexcept {
    bool running = row.state == "running";
    bool live = running || row.state == "available" || row.state == "scheduled" ||
                row.state == "retryable";
    return live && running == (row.has_lease_token && row.has_lease_expiry) && row.attempt >= 0 &&
           row.attempt <= row.max_attempts && row.max_attempts >= 1 &&
           row.max_attempts <= kMaxAttemptsLimit;
}

}  // namespace jobq
