// logfmt writer. One write(2) per line so lines from a dying process are
// never interleaved half-way.
#include "log.h"

#include "json_text.h"

#include <unistd.h>

#include <chrono>
#include <ctime>

#include <fmt/format.h>

namespace jobq {
namespace {
bool g_verbose = false;

const char *LevelName(LogLevel level) {
    switch (level) {
        case LogLevel::kDebug:
            return "debug";
        case LogLevel::kInfo:
            return "info";
        case LogLevel::kNotice:
            return "info";
        case LogLevel::kWarn:
            return "warn";
        case LogLevel::kError:
            return "error";
    }
    return "info";
}
}  // namespace

void SetVerbose(bool verbose) { g_verbose = verbose; }
bool Verbose() { return g_verbose; }

std::string LogfmtValue(std::string_view value) {
    bool needs_quotes = value.empty();
    for (unsigned char c : value) {
        if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f) needs_quotes = true;
    }
    if (!needs_quotes) return std::string(value);
    // A quoted logfmt value is a JSON string: one escaper for both.
    return JsonQuote(value);
}

void Log(LogLevel level, std::string_view msg, std::initializer_list<LogField> fields) {
    if (!g_verbose && (level == LogLevel::kDebug || level == LogLevel::kInfo)) return;
    auto now = std::chrono::system_clock::now();
    std::time_t secs = std::chrono::system_clock::to_time_t(now);
    auto millis =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() %
        1000;
    std::tm tm_utc{};
    gmtime_r(&secs, &tm_utc);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm_utc);
    std::string line = fmt::format("ts={}.{:03d}Z level={} msg={}", stamp, static_cast<int>(millis),
                                   LevelName(level), LogfmtValue(msg));
    for (const auto &field : fields) {
        if (field.first.empty()) continue;  // an optional field left out
        line += ' ';
        line += field.first;
        line += '=';
        line += LogfmtValue(field.second);
    }
    line += '\n';
    ssize_t ignored = write(STDERR_FILENO, line.data(), line.size());
    (void)ignored;
}

}  // namespace jobq
