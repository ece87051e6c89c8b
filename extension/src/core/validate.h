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

// what names the argument in the message ("lease", "retry_in", ...).
void CheckPositiveInterval(const char *what, int64_t microseconds);
void CheckNonNegativeInterval(const char *what, int64_t microseconds);

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
