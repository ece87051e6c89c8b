// Postgres array literals: every element quoted, NULLs as NULL.
#include <gtest/gtest.h>

#include "pg_text.h"

using jobq::ArrayLiteral;

TEST(ArrayLiteral, QuotesEverything) {
    EXPECT_EQ(ArrayLiteral(std::vector<std::string>{}), "{}");
    EXPECT_EQ(ArrayLiteral(std::vector<std::string>{"a", "b c"}), "{\"a\",\"b c\"}");
    EXPECT_EQ(ArrayLiteral(std::vector<std::string>{"q\"uote", "back\\slash", "{,}"}),
              "{\"q\\\"uote\",\"back\\\\slash\",\"{,}\"}");
    EXPECT_EQ(ArrayLiteral(std::vector<std::optional<std::string>>{std::nullopt, "NULL"}),
              "{NULL,\"NULL\"}");
}
