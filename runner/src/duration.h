// Durations as written in the config and on the command line.
//
// Vocabulary: a duration string is one or more <number><unit> terms, units
// ms, s, m, h, d ("500ms", "30s", "2m", "1h30m", "1.5s"). A bare TOML integer
// means seconds. Zero is allowed by the parser; callers decide whether it is.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace jobq {

using Millis = std::chrono::milliseconds;

// Parses a duration string; std::nullopt when it is malformed or negative.
std::optional<Millis> ParseDuration(std::string_view text);

// Renders a duration as a Postgres interval literal ("1500 milliseconds").
std::string IntervalLiteral(Millis d);

// Renders a duration for humans and logs ("1.5s", "200ms").
std::string FormatDuration(Millis d);

}  // namespace jobq
