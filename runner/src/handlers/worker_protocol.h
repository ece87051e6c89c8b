// The line protocol between jobq-runner and a persistent worker process
// (docs/handler-protocol.md), as pure functions: building the runner's
// lines and parsing the child's. No I/O here; handlers/worker.cpp does that.
//
// Vocabulary: a *line* is one JSON object terminated by '\n'. The runner
// sends hello, start, cancel and shutdown; the child sends ready (the
// handshake's answer), then progress, heartbeat, sleep, complete, fail and
// log. A line the runner cannot use is *malformed*: its error says why in
// one sentence, and, when the line named a job, which job (so that job can
// be failed instead of left waiting).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "duration.h"
#include "job.h"

namespace jobq {

constexpr int kWorkerProtocolVersion = 1;

enum class ChildMessageType {
    kReady,
    kProgress,
    kHeartbeat,
    kSleep,
    kComplete,
    kFail,
    kLog,
};

struct ChildMessage {
    ChildMessageType type = ChildMessageType::kLog;
    int64_t id = 0;  // every type but ready and log (optional there)
    bool has_id = false;
    int protocol = 0;                     // ready
    std::optional<std::string> progress;  // progress: JSON text
    std::optional<std::string> state;     // progress, sleep: JSON text
    std::optional<std::string> result;    // complete: JSON text (jsonb-safe)
    Millis sleep_for{0};                  // sleep
    std::string error;                    // fail
    std::optional<Millis> retry_in;       // fail
    bool discard = false;                 // fail
    std::string level = "info";           // log
    std::string message;                  // log
};

struct ParsedLine {
    std::optional<ChildMessage> message;  // set when the line is usable
    std::string error;                    // else why not
    std::optional<int64_t> id;            // the job the bad line named, if any
};

// Parses one line from the child (without its '\n'). With `implied_id`
// (a channel of one job, as exec's talk-back), "id" may be left out, and
// must name that job when present.
ParsedLine ParseChildLine(std::string_view line, std::optional<int64_t> implied_id = std::nullopt);

// The job id a line names in its first bytes ("id": <digits>), for a line
// too long to parse whole.
std::optional<int64_t> PeekJobId(std::string_view prefix);

// The runner's lines, each ending in '\n'.
std::string HelloLine(const std::string &queue, int concurrency);
// deadline_unix_ms: wall-clock deadline; timeout: the queue's timeout.
std::string StartLine(const ClaimedJob &job, int64_t deadline_unix_ms, Millis timeout);
std::string CancelLine(int64_t id, std::string_view reason);
std::string ShutdownLine();

}  // namespace jobq
