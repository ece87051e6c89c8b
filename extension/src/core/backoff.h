// Retry backoff: exponential in the attempt number, capped, with jitter.
//
//   delay = min(max, base * 2^(attempt - 1)) * (1 - jitter * u),  u in [0, 1)
//
// Jitter only shortens the delay, so `max` is a true upper bound and
// retries of jobs that failed together spread out instead of returning in
// lock-step. Defaults (per queue): base 1 s, max 1 h, jitter 0.1.
#pragma once
#include "core/pure_cpp.h"

#include <cstdint>

namespace jobq {

// attempt >= 1 is the attempt that just failed; unit_random in [0, 1).
int64_t BackoffMicros(int64_t attempt, int64_t base_us, int64_t max_us, double jitter,
                      double unit_random);

}  // namespace jobq
