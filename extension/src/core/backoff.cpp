#include "core/backoff.h"

#include <algorithm>
#include <cmath>

namespace jobq {

int64_t BackoffMicros(int64_t attempt, int64_t base_us, int64_t max_us, double jitter,
                      double unit_random) {
    if (base_us <= 0) base_us = 1;
    if (max_us < base_us) max_us = base_us;
    attempt = std::max<int64_t>(attempt, 1);
    // 2^62 overflows int64 micros long before; compute in floating point and cap.
    double raw = static_cast<double>(base_us) *
                 std::ldexp(1.0, static_cast<int>(std::min<int64_t>(attempt - 1, 62)));
    // 9e18 < INT64_MAX: converting the double back must not overflow (it
    // made a max_us near INT64_MAX come out as a delay of 0).
    double capped = std::min({raw, static_cast<double>(max_us), 9.0e18});
    jitter = std::clamp(jitter, 0.0, 1.0);
    unit_random = std::clamp(unit_random, 0.0, 1.0);
    double delay = capped * (1.0 - jitter * unit_random);
    return std::max<int64_t>(static_cast<int64_t>(delay), 0);
}

}  // namespace jobq
