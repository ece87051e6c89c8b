// Postgres array literals (see pg_text.h).
#include "pg_text.h"

namespace jobq {

std::string ArrayLiteral(const std::vector<std::optional<std::string>> &elements) {
    std::string out = "{";
    bool first = true;
    for (const auto &element : elements) {
        if (!first) out += ',';
        first = false;
        if (!element) {
            out += "NULL";
            continue;
        }
        out += '"';
        for (char c : *element) {
            if (c == '"' || c == '\\') out += '\\';
            out += c;
        }
        out += '"';
    }
    out += '}';
    return out;
}

std::string ArrayLiteral(const std::vector<std::string> &elements) {
    std::vector<std::optional<std::string>> opt(elements.begin(), elements.end());
    return ArrayLiteral(opt);
}

}  // namespace jobq
