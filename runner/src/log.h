// Logging in logfmt: one event per line, `ts=... level=... msg="..." k=v`.
//
// Vocabulary: a *field* is one key=value pair; values that need it are
// quoted with Go-style escapes so every line stays machine-parseable.
// Policy: quiet by default (errors and warnings, plus the one start line);
// --verbose adds per-job lines (level=info / debug).
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace jobq {

// kNotice prints as level=info but is shown without --verbose (start and
// shutdown milestones).
enum class LogLevel { kDebug, kInfo, kNotice, kWarn, kError };

using LogField = std::pair<std::string_view, std::string>;

void SetVerbose(bool verbose);
bool Verbose();

// Writes one logfmt line to stderr if the level is enabled. Fields with an
// empty key are left out.
void Log(LogLevel level, std::string_view msg, std::initializer_list<LogField> fields = {});

// Quotes a logfmt value when it contains spaces, quotes, '=' or controls.
std::string LogfmtValue(std::string_view value);

}  // namespace jobq
