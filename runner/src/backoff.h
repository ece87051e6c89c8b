// Reconnect backoff: jittered exponential ("equal jitter").
//
// Vocabulary: attempt n (0-based) has a ceiling min(max, base * 2^n); the
// delay is uniform in [ceiling/2, ceiling], so many runners restarted by the
// same database restart spread out instead of reconnecting in lock-step,
// while none waits less than half its ceiling.
#pragma once

#include <chrono>
#include <random>

namespace jobq {

class Backoff {
  public:
    Backoff(std::chrono::milliseconds base, std::chrono::milliseconds max, uint64_t seed);

    // The delay before the next attempt; grows the attempt counter.
    std::chrono::milliseconds Next();
    // Called after a success: the next failure starts from base again.
    void Reset() { attempt_ = 0; }
    int attempt() const { return attempt_; }

    // The ceiling of attempt n, exposed for tests.
    std::chrono::milliseconds Ceiling(int attempt) const;

  private:
    std::chrono::milliseconds base_;
    std::chrono::milliseconds max_;
    int attempt_ = 0;
    std::mt19937_64 rng_;
};

}  // namespace jobq
