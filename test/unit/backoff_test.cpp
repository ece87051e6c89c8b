// Unit tests of core/backoff: exponential, capped, jitter only shortens.
#include "core/backoff.h"

#include <gtest/gtest.h>

namespace {

constexpr int64_t kSecond = 1000000;

TEST(Backoff, DoublesPerAttemptWithoutJitter) {
    EXPECT_EQ(jobq::BackoffMicros(1, kSecond, 3600 * kSecond, 0, 0.5), kSecond);
    EXPECT_EQ(jobq::BackoffMicros(2, kSecond, 3600 * kSecond, 0, 0.5), 2 * kSecond);
    EXPECT_EQ(jobq::BackoffMicros(5, kSecond, 3600 * kSecond, 0, 0.5), 16 * kSecond);
}

TEST(Backoff, CappedAtMaxEvenForHugeAttempts) {
    EXPECT_EQ(jobq::BackoffMicros(13, kSecond, 3600 * kSecond, 0, 0), 3600 * kSecond);
    EXPECT_EQ(jobq::BackoffMicros(1000, kSecond, 3600 * kSecond, 0, 0), 3600 * kSecond);
    EXPECT_EQ(jobq::BackoffMicros(INT64_MAX, kSecond, 3600 * kSecond, 0, 0), 3600 * kSecond);
}

TEST(Backoff, JitterShortensWithinItsFraction) {
    for (double u : {0.0, 0.25, 0.5, 0.999}) {
        int64_t d = jobq::BackoffMicros(4, kSecond, 3600 * kSecond, 0.1, u);
        EXPECT_LE(d, 8 * kSecond);
        EXPECT_GE(d, static_cast<int64_t>(7.2 * kSecond));
    }
}

TEST(Backoff, DefensiveAgainstBadInputs) {
    EXPECT_GE(jobq::BackoffMicros(0, kSecond, kSecond, 0, 0), 0);
    EXPECT_EQ(jobq::BackoffMicros(3, kSecond, 0, 0, 0), kSecond);           // max < base: base wins
    EXPECT_GE(jobq::BackoffMicros(3, kSecond, 10 * kSecond, 5.0, 1.0), 0);  // jitter clamped
    // A cap near INT64_MAX stays huge (it once wrapped around to 0).
    EXPECT_GT(jobq::BackoffMicros(1, INT64_MAX, INT64_MAX, 0, 0), INT64_MAX / 2);
}

}  // namespace
