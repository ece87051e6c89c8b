// Duration strings: units, combinations, and rejection of everything else.
#include <gtest/gtest.h>

#include "duration.h"

using jobq::Millis;
using jobq::ParseDuration;

TEST(Duration, Units) {
    EXPECT_EQ(ParseDuration("500ms"), Millis(500));
    EXPECT_EQ(ParseDuration("30s"), Millis(30'000));
    EXPECT_EQ(ParseDuration("2m"), Millis(120'000));
    EXPECT_EQ(ParseDuration("1h"), Millis(3'600'000));
    EXPECT_EQ(ParseDuration("1d"), Millis(86'400'000));
}

TEST(Duration, CombinationsAndFractions) {
    EXPECT_EQ(ParseDuration("1h30m"), Millis(5'400'000));
    EXPECT_EQ(ParseDuration("1m 30s"), Millis(90'000));
    EXPECT_EQ(ParseDuration("1.5s"), Millis(1500));
    EXPECT_EQ(ParseDuration("0s"), Millis(0));
    EXPECT_EQ(ParseDuration("0.25s"), Millis(250));
}

TEST(Duration, Rejects) {
    for (const char *bad :
         {"", " ", "30", "s", "3x", "-1s", "1.2.3s", ".s", "1sec", "1 s", "1s2", "ms", "1e3s"}) {
        EXPECT_FALSE(ParseDuration(bad).has_value()) << bad;
    }
}

TEST(Duration, Formatting) {
    EXPECT_EQ(jobq::FormatDuration(Millis(200)), "200ms");
    EXPECT_EQ(jobq::FormatDuration(Millis(1500)), "1.5s");
    EXPECT_EQ(jobq::FormatDuration(Millis(30'000)), "30s");
    EXPECT_EQ(jobq::IntervalLiteral(Millis(1500)), "1500 milliseconds");
}
