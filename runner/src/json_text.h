// JSON as text: the runner never builds a DOM, it only checks and quotes.
//
// Vocabulary: *jsonb-safe* text is what Postgres' jsonb input accepts:
// RFC 8259 JSON in valid UTF-8, with no \u0000 and no unpaired surrogate
// escapes. Handler output that is jsonb-safe is stored as JSON; anything
// else is stored as a JSON string (JsonQuote), so a settle never fails on a
// handler's bytes.
#pragma once

#include <string>
#include <string_view>

namespace jobq {

bool IsJsonbSafe(std::string_view text);

// A JSON string literal of text; invalid UTF-8 becomes U+FFFD, NUL is dropped.
std::string JsonQuote(std::string_view text);

// Text that Postgres accepts as a `text` value: valid UTF-8, no NUL bytes.
std::string SanitizeText(std::string_view text);

}  // namespace jobq
