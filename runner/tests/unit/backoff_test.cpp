// Reconnect backoff: ceilings double up to max; every delay lies in
// [ceiling/2, ceiling]; seeds spread runners apart.
#include <gtest/gtest.h>

#include <set>

#include "backoff.h"

using jobq::Backoff;
using std::chrono::milliseconds;

TEST(Backoff, CeilingDoublesAndCaps) {
    Backoff b(milliseconds(100), milliseconds(1000), 1);
    EXPECT_EQ(b.Ceiling(0), milliseconds(100));
    EXPECT_EQ(b.Ceiling(1), milliseconds(200));
    EXPECT_EQ(b.Ceiling(3), milliseconds(800));
    EXPECT_EQ(b.Ceiling(4), milliseconds(1000));
    EXPECT_EQ(b.Ceiling(1000), milliseconds(1000));  // no overflow
}

TEST(Backoff, JitterStaysWithinBounds) {
    for (uint64_t seed = 0; seed < 50; ++seed) {
        Backoff b(milliseconds(100), milliseconds(10'000), seed);
        for (int attempt = 0; attempt < 20; ++attempt) {
            auto ceiling = b.Ceiling(attempt);
            auto d = b.Next();
            EXPECT_GE(d, ceiling / 2) << "seed " << seed << " attempt " << attempt;
            EXPECT_LE(d, ceiling) << "seed " << seed << " attempt " << attempt;
        }
    }
}

TEST(Backoff, ResetStartsOver) {
    Backoff b(milliseconds(100), milliseconds(10'000), 7);
    for (int i = 0; i < 5; ++i) b.Next();
    EXPECT_EQ(b.attempt(), 5);
    b.Reset();
    EXPECT_EQ(b.attempt(), 0);
    EXPECT_LE(b.Next(), milliseconds(100));
}

TEST(Backoff, DifferentSeedsSpreadOut) {
    std::set<long long> delays;
    for (uint64_t seed = 0; seed < 20; ++seed) {
        Backoff b(milliseconds(1000), milliseconds(60'000), seed);
        for (int i = 0; i < 4; ++i) b.Next();
        delays.insert(b.Next().count());
    }
    EXPECT_GT(delays.size(), 10u);
}

TEST(Backoff, DegenerateSettingsStayPositive) {
    Backoff b(milliseconds(0), milliseconds(0), 3);
    for (int i = 0; i < 10; ++i) {
        auto d = b.Next();
        EXPECT_GE(d.count(), 0);
        EXPECT_LE(d.count(), 1);
    }
}
