// Values sent to Postgres as text parameters.
//
// Vocabulary: an *array literal* is Postgres' external array form
// ('{"a","b",NULL}'); every element is quoted, so any text survives, and
// std::nullopt elements become SQL NULLs. All statements take values as
// parameters ($n); nothing is ever spliced into SQL text.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace jobq {

std::string ArrayLiteral(const std::vector<std::optional<std::string>> &elements);
std::string ArrayLiteral(const std::vector<std::string> &elements);

}  // namespace jobq
