// Input rules shared by every SQL entry point: queue names, limits on
// batch sizes and payloads, intervals, unique modes. Each check throws
// jobq::Error with a Postgres-style message and a real SQLSTATE.
#pragma once
#include "core/pure_cpp.h"

#include <cstdint>
#include <string_view>

namespace jobq {

// Queue names: lower-case ASCII letters, digits, '_', '.', '-'; starting
// with a letter or digit; at most kMaxQueueNameLength bytes, well under
// Postgres' 63-byte identifier limit so no two names collide after
// truncation when used in channel or role names.
inline constexpr std::size_t kMaxQueueNameLength = 48;
void CheckQueueName(std::string_view name);

inline constexpr int kMaxClaimBatch = 10000;
void CheckClaimBatch(int64_t max_jobs);

// Worker names identify a claimer (host:pid, say) on every job it holds.
inline constexpr std::size_t kMaxWorkerNameLength = 200;
void CheckWorkerName(std::string_view name);

inline constexpr int kMaxAttemptsLimit = 1000;
void CheckMaxAttempts(int64_t max_attempts);

void CheckPriority(int64_t priority);  // fits smallint

// Payload size is the jsonb's binary size, compared to jobq.max_payload_size.
void CheckPayloadSize(std::size_t bytes, std::size_t limit);

// Bounds of every interval a user sets, as a queue option or a call's
// argument, by its name (docs/api.md lists them). The minimum keeps a value
// meaningful (a lease shorter than a second expires before a runner can
// heartbeat); the maximum keeps now() +/- the value far inside the range of
// timestamptz, so no setting can make a claim, a retry or retention fail
// later with "timestamp out of range". Microseconds as IntervalMicros
// counts them (a month is 30 days, a year 360 days, as Postgres compares
// intervals).
struct IntervalBounds {
    const char *name;  // "lease", "backoff_base", "retry_in", ...
    int64_t min_us;
    int64_t max_us;
    const char *min_text;  // for the message: "1 second"
    const char *max_text;  // "7 days"
};
// nullptr for a name that has no bounds.
const IntervalBounds *FindIntervalBounds(std::string_view name);
// Throws 22023 "<name> must be between <min> and <max>" when out of bounds,
// and 22023 for a name without bounds (a programming error).
void CheckIntervalSetting(std::string_view name, int64_t microseconds);

// Unique keys are stored in two btree indexes with the queue name; a key
// longer than this could not fit an index row (2704 bytes).
inline constexpr std::size_t kMaxUniqueKeyLength = 1024;
// what: "unique_key", or "unique_keys" with the element's position.
void CheckUniqueKeyLength(std::string_view what, std::size_t bytes);

enum class UniqueMode { kKeep, kReplace, kDebounce };
UniqueMode ParseUniqueMode(std::string_view mode);

// Parallel arrays of a batch call must be equally long.
void CheckSameLength(const char *what, int64_t expected, int64_t actual);

// The invariant of a row of the live-job table (jobq.job's CHECK
// constraint): a live state; a lease (token and expiry) exactly when
// running; 0 <= attempt <= max_attempts; max_attempts within its limits.
struct LiveJobRow {
    std::string_view state;
    int64_t attempt;
    int64_t max_attempts;
    bool has_lease_token;
    bool has_lease_expiry;
};
bool IsValidLiveJobRow(const LiveJobRow &row) noexcept;

}  // namespace jobq
