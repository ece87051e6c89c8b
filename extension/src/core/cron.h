// Cron expressions for periodic jobs (pure C++, no Postgres).
//
// Syntax: five fields "minute hour day-of-month month day-of-week", or six
// with a leading seconds field. Each field is "*" or a comma list of
// "a", "a-b", "*/n", "a/n" (a to the field's end) or "a-b/n". Months take
// jan..dec, weekdays sun..sat (0-7, both 0 and 7 are Sunday), names in any
// case. Macros: @yearly (@annually), @monthly, @weekly, @daily (@midnight),
// @hourly. As in Vixie cron, when both day fields are restricted a day
// matches if either matches.
//
// Times here are civil (wall-clock) times without a zone; the SQL layer
// converts them to and from timestamptz in the schedule's time zone.
#pragma once
#include "core/pure_cpp.h"

#include <bitset>
#include <optional>
#include <string>
#include <string_view>

namespace jobq::cron {

struct Schedule {
    std::bitset<60> seconds;
    std::bitset<60> minutes;
    std::bitset<24> hours;
    std::bitset<32> days;     // 1..31
    std::bitset<13> months;   // 1..12
    std::bitset<7> weekdays;  // 0 = Sunday
    bool days_restricted = false;
    bool weekdays_restricted = false;
};

struct CivilTime {
    int year, month, day, hour, minute, second;
    bool operator==(const CivilTime &o) const {
        return year == o.year && month == o.month && day == o.day && hour == o.hour &&
               minute == o.minute && second == o.second;
    }
};

// Throws jobq::Error (SQLSTATE 22023) naming the bad field.
Schedule Parse(std::string_view expression);

// The first civil time strictly after `after` that matches, searching at
// most kSearchYears ahead; nullopt if there is none (e.g. "0 0 30 2 *").
inline constexpr int kSearchYears = 10;
std::optional<CivilTime> Next(const Schedule &schedule, const CivilTime &after);

int DaysInMonth(int year, int month);
int Weekday(int year, int month, int day);  // 0 = Sunday

}  // namespace jobq::cron
