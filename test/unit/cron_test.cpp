// Unit tests of the cron parser and next-time search (core/cron.h).
#include "core/cron.h"

#include <gtest/gtest.h>

#include "core/error.h"

using jobq::cron::CivilTime;
using jobq::cron::Next;
using jobq::cron::Parse;

namespace {

CivilTime At(int y, int mo, int d, int h, int mi, int s = 0) {
    return CivilTime{y, mo, d, h, mi, s};
}

void ExpectNext(const char *expr, CivilTime after, CivilTime expected) {
    auto next = Next(Parse(expr), after);
    ASSERT_TRUE(next.has_value()) << expr;
    EXPECT_EQ(next->year, expected.year) << expr;
    EXPECT_EQ(next->month, expected.month) << expr;
    EXPECT_EQ(next->day, expected.day) << expr;
    EXPECT_EQ(next->hour, expected.hour) << expr;
    EXPECT_EQ(next->minute, expected.minute) << expr;
    EXPECT_EQ(next->second, expected.second) << expr;
}

std::string ErrorDetail(const char *expr) {
    try {
        Parse(expr);
    } catch (const jobq::Error &e) {
        EXPECT_STREQ(e.sqlstate(), "22023");
        EXPECT_NE(std::string(e.what()).find("invalid cron expression"), std::string::npos);
        return e.detail();
    }
    ADD_FAILURE() << "no error for " << expr;
    return "";
}

}  // namespace

TEST(Cron, EveryMinute) {
    ExpectNext("* * * * *", At(2026, 1, 1, 10, 0, 30), At(2026, 1, 1, 10, 1));
}

TEST(Cron, StrictlyAfter) { ExpectNext("* * * * *", At(2026, 1, 1, 10, 1), At(2026, 1, 1, 10, 2)); }

TEST(Cron, EveryFifteenMinutes) {
    ExpectNext("*/15 * * * *", At(2026, 1, 1, 10, 7), At(2026, 1, 1, 10, 15));
    ExpectNext("*/15 * * * *", At(2026, 1, 1, 10, 45), At(2026, 1, 1, 11, 0));
}

TEST(Cron, RangeWithStep) {
    ExpectNext("10-30/10 * * * *", At(2026, 1, 1, 10, 31), At(2026, 1, 1, 11, 10));
}

TEST(Cron, StartWithStep) {
    ExpectNext("50/5 * * * *", At(2026, 1, 1, 10, 56), At(2026, 1, 1, 11, 50));
}

TEST(Cron, Lists) { ExpectNext("5,20,40 9 * * *", At(2026, 1, 1, 9, 20), At(2026, 1, 1, 9, 40)); }

TEST(Cron, DailyRollsOverMonthAndYear) {
    ExpectNext("30 2 * * *", At(2026, 12, 31, 3, 0), At(2027, 1, 1, 2, 30));
}

TEST(Cron, MonthNamesAndWeekdayNames) {
    // 2026-03-02 is a Monday.
    ExpectNext("0 9 * mar mon", At(2026, 1, 1, 0, 0), At(2026, 3, 2, 9, 0));
    ExpectNext("0 9 * * MON-FRI", At(2026, 3, 6, 10, 0), At(2026, 3, 9, 9, 0));
}

TEST(Cron, SundayAsZeroOrSeven) {
    // 2026-03-08 is a Sunday.
    ExpectNext("0 0 * * 0", At(2026, 3, 2, 0, 0), At(2026, 3, 8, 0, 0));
    ExpectNext("0 0 * * 7", At(2026, 3, 2, 0, 0), At(2026, 3, 8, 0, 0));
}

TEST(Cron, DayOfMonthOrDayOfWeekWhenBothRestricted) {
    // The 13th, or any Friday: after Mon 2026-03-02 the first is Fri 03-06.
    ExpectNext("0 0 13 * 5", At(2026, 3, 2, 0, 0), At(2026, 3, 6, 0, 0));
    // Only the day of month restricted: weekday '*' does not widen it.
    ExpectNext("0 0 13 * *", At(2026, 3, 2, 0, 0), At(2026, 3, 13, 0, 0));
}

TEST(Cron, LeapDay) { ExpectNext("0 0 29 2 *", At(2026, 3, 1, 0, 0), At(2028, 2, 29, 0, 0)); }

TEST(Cron, NeverFires) {
    EXPECT_FALSE(Next(Parse("0 0 30 2 *"), At(2026, 1, 1, 0, 0)).has_value());
}

TEST(Cron, Macros) {
    ExpectNext("@hourly", At(2026, 1, 1, 10, 0), At(2026, 1, 1, 11, 0));
    ExpectNext("@daily", At(2026, 1, 1, 10, 0), At(2026, 1, 2, 0, 0));
    ExpectNext("@midnight", At(2026, 1, 1, 10, 0), At(2026, 1, 2, 0, 0));
    ExpectNext("@weekly", At(2026, 3, 2, 0, 0), At(2026, 3, 8, 0, 0));
    ExpectNext("@monthly", At(2026, 3, 2, 0, 0), At(2026, 4, 1, 0, 0));
    ExpectNext("@yearly", At(2026, 3, 2, 0, 0), At(2027, 1, 1, 0, 0));
    ExpectNext("@ANNUALLY", At(2026, 3, 2, 0, 0), At(2027, 1, 1, 0, 0));
}

TEST(Cron, SecondsField) {
    ExpectNext("*/2 * * * * *", At(2026, 1, 1, 10, 0, 1), At(2026, 1, 1, 10, 0, 2));
    ExpectNext("30 * * * * *", At(2026, 1, 1, 10, 0, 30), At(2026, 1, 1, 10, 1, 30));
}

TEST(Cron, WhitespaceIsFlexible) {
    ExpectNext("  0   12 * *  * ", At(2026, 1, 1, 0, 0), At(2026, 1, 1, 12, 0));
}

TEST(Cron, Weekday) {
    EXPECT_EQ(jobq::cron::Weekday(1970, 1, 1), 4);
    EXPECT_EQ(jobq::cron::Weekday(2026, 3, 8), 0);
    EXPECT_EQ(jobq::cron::Weekday(2000, 2, 29), 2);
}

TEST(CronErrors, FieldCount) {
    EXPECT_NE(ErrorDetail("* * * *").find("Expected 5 or 6 fields, found 4"), std::string::npos);
    EXPECT_NE(ErrorDetail("").find("found 0"), std::string::npos);
    EXPECT_NE(ErrorDetail("* * * * * * *").find("found 7"), std::string::npos);
}

TEST(CronErrors, OutOfRange) {
    EXPECT_NE(ErrorDetail("60 * * * *").find("out of range for the minute field"),
              std::string::npos);
    EXPECT_NE(ErrorDetail("* 24 * * *").find("hour"), std::string::npos);
    EXPECT_NE(ErrorDetail("* * 0 * *").find("day-of-month"), std::string::npos);
    EXPECT_NE(ErrorDetail("* * * 13 *").find("month"), std::string::npos);
    EXPECT_NE(ErrorDetail("* * * * 8").find("day-of-week"), std::string::npos);
}

TEST(CronErrors, Syntax) {
    EXPECT_NE(ErrorDetail("a * * * *").find("not a valid minute"), std::string::npos);
    EXPECT_NE(ErrorDetail("*/0 * * * *").find("Step 0"), std::string::npos);
    EXPECT_NE(ErrorDetail("*/x * * * *").find("not a number"), std::string::npos);
    EXPECT_NE(ErrorDetail("30-10 * * * *").find("ends before it starts"), std::string::npos);
    EXPECT_NE(ErrorDetail("1,,2 * * * *").find("empty"), std::string::npos);
    EXPECT_NE(ErrorDetail("* * * foo *").find("not a valid month"), std::string::npos);
    EXPECT_NE(ErrorDetail("@reboot").find("not supported"), std::string::npos);
    EXPECT_NE(ErrorDetail("@every").find("Unknown macro"), std::string::npos);
}
