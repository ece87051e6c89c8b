// Duration parsing: strict, so a typo in the config fails at start.
#include "duration.h"

#include <cctype>
#include <cmath>

#include <fmt/format.h>

namespace jobq {

std::optional<Millis> ParseDuration(std::string_view text) {
    size_t i = 0;
    double total_ms = 0;
    bool any = false;
    while (i < text.size() && text[i] == ' ') ++i;
    while (i < text.size()) {
        size_t start = i;
        bool dot = false;
        while (i < text.size() &&
               (std::isdigit(static_cast<unsigned char>(text[i])) || (text[i] == '.' && !dot))) {
            if (text[i] == '.') dot = true;
            ++i;
        }
        if (i == start || (i == start + 1 && dot)) return std::nullopt;
        double value = std::stod(std::string(text.substr(start, i - start)));
        size_t unit_start = i;
        while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
        std::string_view unit = text.substr(unit_start, i - unit_start);
        double scale;
        if (unit == "ms")
            scale = 1;
        else if (unit == "s")
            scale = 1000;
        else if (unit == "m")
            scale = 60'000;
        else if (unit == "h")
            scale = 3'600'000;
        else if (unit == "d")
            scale = 86'400'000;
        else
            return std::nullopt;
        total_ms += value * scale;
        any = true;
        while (i < text.size() && text[i] == ' ') ++i;
    }
    if (!any || !std::isfinite(total_ms) || total_ms > 1e15) return std::nullopt;
    return Millis(static_cast<long long>(std::llround(total_ms)));
}

std::string IntervalLiteral(Millis d) { return fmt::format("{} milliseconds", d.count()); }

std::string FormatDuration(Millis d) {
    long long ms = d.count();
    if (ms % 1000 != 0 || ms == 0) {
        if (ms < 1000) return fmt::format("{}ms", ms);
        return fmt::format("{:g}s", static_cast<double>(ms) / 1000.0);
    }
    return fmt::format("{}s", ms / 1000);
}

}  // namespace jobq
