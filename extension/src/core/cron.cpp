// Cron parsing and next-time search; see cron.h.
#include "core/cron.h"

#include <cctype>
#include <vector>

#include "core/error.h"

namespace jobq::cron {

namespace {

struct Field {
    const char *name;
    int min, max;
    const char *const *names;  // nullptr or names for min..min+count-1
    int name_count;
};

const char *const kMonthNames[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                   "jul", "aug", "sep", "oct", "nov", "dec"};
const char *const kDayNames[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

const Field kSecond = {"second", 0, 59, nullptr, 0};
const Field kMinute = {"minute", 0, 59, nullptr, 0};
const Field kHour = {"hour", 0, 23, nullptr, 0};
const Field kDay = {"day-of-month", 1, 31, nullptr, 0};
const Field kMonth = {"month", 1, 12, kMonthNames, 12};
const Field kWeekday = {"day-of-week", 0, 7, kDayNames, 7};

[[noreturn]] void Fail(std::string_view expression, const std::string &detail) {
    throw Error(sqlstate::kInvalidParameterValue,
                "invalid cron expression \"" + std::string(expression) + "\"", detail,
                "Use five fields \"minute hour day-of-month month day-of-week\" (six with a "
                "leading seconds field), or @hourly, @daily, @weekly, @monthly, @yearly.");
}

std::string Lower(std::string_view s) {
    std::string out(s);
    for (char &c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

int ParseValue(std::string_view expr, const Field &f, std::string_view token) {
    if (token.empty()) Fail(expr, std::string("The ") + f.name + " field has an empty value.");
    if (std::isdigit(static_cast<unsigned char>(token[0]))) {
        long v = 0;
        for (char c : token) {
            if (!std::isdigit(static_cast<unsigned char>(c)))
                Fail(expr, std::string("\"") + std::string(token) + "\" is not a number in the " +
                               f.name + " field.");
            v = v * 10 + (c - '0');
            if (v > 1000) break;
        }
        if (v < f.min || v > f.max)
            Fail(expr, std::string("Value ") + std::string(token) + " is out of range for the " +
                           f.name + " field (" + std::to_string(f.min) + "-" +
                           std::to_string(f.max) + ").");
        return static_cast<int>(v);
    }
    std::string name = Lower(token);
    for (int i = 0; i < f.name_count; ++i)
        if (name == f.names[i]) return (f.min == 0 ? 0 : f.min) + i;
    Fail(expr, std::string("\"") + std::string(token) + "\" is not a valid " + f.name + ".");
}

int ParseStep(std::string_view expr, const Field &f, std::string_view token) {
    long v = 0;
    if (token.empty()) Fail(expr, std::string("The ") + f.name + " field has an empty step.");
    for (char c : token) {
        if (!std::isdigit(static_cast<unsigned char>(c)))
            Fail(expr, std::string("Step \"") + std::string(token) + "\" in the " + f.name +
                           " field is not a number.");
        v = v * 10 + (c - '0');
        if (v > 1000) break;
    }
    if (v < 1 || v > f.max - f.min + 1)
        Fail(expr, std::string("Step ") + std::string(token) + " is out of range for the " +
                       f.name + " field.");
    return static_cast<int>(v);
}

// Sets bits [min..max] of `out` (as a vector) for the field text.
std::vector<bool> ParseField(std::string_view expr, const Field &f, std::string_view text,
                             bool *restricted) {
    std::vector<bool> bits(f.max + 1, false);
    *restricted = !(text.size() > 0 && text[0] == '*');
    size_t pos = 0;
    while (true) {
        size_t comma = text.find(',', pos);
        std::string_view item = text.substr(
            pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
        if (item.empty())
            Fail(expr, std::string("The ") + f.name + " field has an empty list item.");
        std::string_view range = item;
        int step = 1;
        bool has_step = false;
        size_t slash = item.find('/');
        if (slash != std::string_view::npos) {
            range = item.substr(0, slash);
            step = ParseStep(expr, f, item.substr(slash + 1));
            has_step = true;
        }
        int lo, hi;
        if (range == "*") {
            lo = f.min;
            hi = f.max == 7 ? 6 : f.max;
        } else {
            size_t dash = range.find('-');
            if (dash != std::string_view::npos) {
                lo = ParseValue(expr, f, range.substr(0, dash));
                hi = ParseValue(expr, f, range.substr(dash + 1));
                if (hi < lo)
                    Fail(expr, std::string("Range ") + std::string(range) + " in the " + f.name +
                                   " field ends before it starts.");
            } else {
                lo = ParseValue(expr, f, range);
                hi = has_step ? (f.max == 7 ? 6 : f.max) : lo;
            }
        }
        for (int v = lo; v <= hi; v += step) bits[v] = true;
        if (comma == std::string_view::npos) break;
        pos = comma + 1;
    }
    return bits;
}

template <size_t N>
void Assign(std::bitset<N> &out, const std::vector<bool> &bits) {
    for (size_t i = 0; i < N && i < bits.size(); ++i) out[i] = bits[i];
}

std::vector<std::string_view> SplitFields(std::string_view s) {
    std::vector<std::string_view> out;
    size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
        size_t start = i;
        while (i < s.size() && !std::isspace(static_cast<unsigned char>(s[i]))) ++i;
        if (i > start) out.push_back(s.substr(start, i - start));
    }
    return out;
}

int64_t DaysFromCivil(int y, int m, int d) {
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;
    const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

}  // namespace

int DaysInMonth(int year, int month) {
    static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (month == 2) {
        bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        return leap ? 29 : 28;
    }
    return kDays[month - 1];
}

int Weekday(int year, int month, int day) {
    int64_t days = DaysFromCivil(year, month, day);  // 1970-01-01 was a Thursday
    int64_t w = (days + 4) % 7;
    return static_cast<int>(w < 0 ? w + 7 : w);
}

Schedule Parse(std::string_view expression) {
    std::string_view expr = expression;
    std::vector<std::string_view> fields = SplitFields(expr);
    std::string macro;
    if (fields.size() == 1 && fields[0].size() > 1 && fields[0][0] == '@') {
        std::string name = Lower(fields[0]);
        if (name == "@yearly" || name == "@annually")
            macro = "0 0 1 1 *";
        else if (name == "@monthly")
            macro = "0 0 1 * *";
        else if (name == "@weekly")
            macro = "0 0 * * 0";
        else if (name == "@daily" || name == "@midnight")
            macro = "0 0 * * *";
        else if (name == "@hourly")
            macro = "0 * * * *";
        else if (name == "@reboot")
            Fail(expr, "@reboot is not supported: periodic jobs run on a clock, not at start-up.");
        else
            Fail(expr, "Unknown macro " + std::string(fields[0]) + ".");
        fields = SplitFields(macro);
    }
    if (fields.size() != 5 && fields.size() != 6)
        Fail(expr, "Expected 5 or 6 fields, found " + std::to_string(fields.size()) + ".");
    Schedule s;
    size_t i = 0;
    bool restricted;
    if (fields.size() == 6) {
        Assign(s.seconds, ParseField(expr, kSecond, fields[i++], &restricted));
    } else {
        s.seconds[0] = true;
    }
    Assign(s.minutes, ParseField(expr, kMinute, fields[i++], &restricted));
    Assign(s.hours, ParseField(expr, kHour, fields[i++], &restricted));
    Assign(s.days, ParseField(expr, kDay, fields[i++], &s.days_restricted));
    Assign(s.months, ParseField(expr, kMonth, fields[i++], &restricted));
    std::vector<bool> wd = ParseField(expr, kWeekday, fields[i++], &s.weekdays_restricted);
    for (int d = 0; d < 7; ++d) s.weekdays[d] = wd[d];
    if (wd[7]) s.weekdays[0] = true;
    return s;
}

namespace {

bool DayMatches(const Schedule &s, int y, int m, int d) {
    bool dom = s.days[d];
    bool dow = s.weekdays[Weekday(y, m, d)];
    if (s.days_restricted && s.weekdays_restricted) return dom || dow;
    return dom && dow;
}

// First (h, mi, sec) >= (h0, m0, s0) matching, within one day.
bool FirstTimeOfDay(const Schedule &s, int h0, int m0, int s0, int *h, int *mi, int *sec) {
    for (int hh = h0; hh < 24; ++hh) {
        if (!s.hours[hh]) continue;
        int mstart = hh == h0 ? m0 : 0;
        for (int mm = mstart; mm < 60; ++mm) {
            if (!s.minutes[mm]) continue;
            int sstart = (hh == h0 && mm == m0) ? s0 : 0;
            for (int ss = sstart; ss < 60; ++ss) {
                if (s.seconds[ss]) {
                    *h = hh;
                    *mi = mm;
                    *sec = ss;
                    return true;
                }
            }
        }
    }
    return false;
}

}  // namespace

std::optional<CivilTime> Next(const Schedule &s, const CivilTime &after) {
    // Start one second later, normalised.
    CivilTime t = after;
    if (++t.second == 60) {
        t.second = 0;
        if (++t.minute == 60) {
            t.minute = 0;
            if (++t.hour == 24) {
                t.hour = 0;
                if (++t.day > DaysInMonth(t.year, t.month)) {
                    t.day = 1;
                    if (++t.month == 13) {
                        t.month = 1;
                        ++t.year;
                    }
                }
            }
        }
    }
    int y = t.year, m = t.month, d = t.day;
    bool first = true;
    const int last_year = after.year + kSearchYears;
    while (y <= last_year) {
        if (s.months[m] && DayMatches(s, y, m, d)) {
            int h, mi, sec;
            if (FirstTimeOfDay(s, first ? t.hour : 0, first ? t.minute : 0, first ? t.second : 0,
                               &h, &mi, &sec))
                return CivilTime{y, m, d, h, mi, sec};
        }
        first = false;
        if (!s.months[m]) {  // skip the whole month
            d = 1;
            if (++m == 13) {
                m = 1;
                ++y;
            }
            continue;
        }
        if (++d > DaysInMonth(y, m)) {
            d = 1;
            if (++m == 13) {
                m = 1;
                ++y;
            }
        }
    }
    return std::nullopt;
}

}  // namespace jobq::cron
