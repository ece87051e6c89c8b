// The `noop` handler: completes every job at once without doing anything.
// For benchmarks and smoke tests of the queue itself, never for real work.
#pragma once

#include <memory>

#include "event_loop.h"
#include "job.h"

namespace jobq {

// Reports a complete outcome on the next loop turn (never from inside Start).
std::unique_ptr<Execution> StartNoop(EventLoop &loop, DoneCallback done);

}  // namespace jobq
