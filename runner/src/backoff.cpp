// Equal-jitter exponential backoff (see backoff.h for the bounds).
#include "backoff.h"

#include <algorithm>

namespace jobq {

Backoff::Backoff(std::chrono::milliseconds base, std::chrono::milliseconds max, uint64_t seed)
    : base_(std::max(base, std::chrono::milliseconds(1))), max_(std::max(max, base_)), rng_(seed) {}

std::chrono::milliseconds Backoff::Ceiling(int attempt) const {
    // Doubling stops once past max, so the shift never overflows.
    long long ceiling = base_.count();
    for (int i = 0; i < attempt && ceiling < max_.count(); ++i) ceiling *= 2;
    return std::chrono::milliseconds(std::min(ceiling, static_cast<long long>(max_.count())));
}

std::chrono::milliseconds Backoff::Next() {
    long long ceiling = Ceiling(attempt_).count();
    ++attempt_;
    std::uniform_int_distribution<long long> pick(ceiling / 2, ceiling);
    return std::chrono::milliseconds(pick(rng_));
}

}  // namespace jobq
