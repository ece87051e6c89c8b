// What a handler sees and what it reports.
//
// Vocabulary: a *claimed job* is one row returned by jobq.claim, with the
// lease token every settle must carry; an *execution* is one running
// handler for one claimed job; its *outcome* decides the settle call:
//   kComplete -> jobq.complete (result kept as JSON)
//   kRetry    -> jobq.fail, the handler asked for a retry (backoff or retry_in)
//   kFail     -> jobq.fail, the handler failed (backoff)
//   kDiscard  -> jobq.fail(discard => true): dead at once, no more attempts
//   kSleep    -> jobq.sleep: out of running for sleep_for, attempt given
//                back, `state` saved (worker handler)
//   kRelease  -> jobq.release: never started (a worker handler with no
//                process to run it), attempt given back
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "duration.h"

namespace jobq {

struct ClaimedJob {
    int64_t id = 0;
    std::string queue;
    std::string payload;  // jsonb as text, passed through untouched
    int attempt = 0;
    int64_t token = 0;
    // JSON text a resumed job left (jobq.claim's progress and saved_state).
    std::optional<std::string> progress;
    std::optional<std::string> saved_state;
};

enum class OutcomeKind { kComplete, kRetry, kFail, kDiscard, kSleep, kRelease };

struct Outcome {
    OutcomeKind kind = OutcomeKind::kComplete;
    std::optional<std::string> result;  // jsonb-safe JSON text
    std::string error;
    std::optional<Millis> retry_in;
    Millis sleep_for{0};               // kSleep
    std::optional<std::string> state;  // kSleep: JSON text to save (none: keep)
};

// The JSON document a handler receives: {"id","queue","attempt","payload"}.
std::string JobDocument(const ClaimedJob &job);

// A running handler. Destroying it stops the handler at once (SIGKILL of the
// child's process group, or an aborted transfer) and suppresses its outcome.
class Execution {
  public:
    virtual ~Execution() = default;
};

// Called exactly once per execution unless it was destroyed first; never
// from inside Start.
using DoneCallback = std::function<void(Outcome)>;

}  // namespace jobq
