// jsonb-safety checks and quoting of handler output.
#include <gtest/gtest.h>

#include "json_text.h"

using jobq::IsJsonbSafe;
using jobq::JsonQuote;

TEST(JsonText, AcceptsJson) {
    for (const char *ok : {"{}", "[]", "0", "-1.5e+10", "\"x\"", "true", "null",
                           " {\"a\": [1, 2, {\"b\": null}]} \n", "\"\\u00e9\\n\"",
                           "\"\\ud83d\\ude00\"", "\"h\xc3\xa9\""}) {
        EXPECT_TRUE(IsJsonbSafe(ok)) << ok;
    }
}

TEST(JsonText, RejectsNonJsonAndWhatJsonbRefuses) {
    for (const char *bad :
         {"", "hello", "{", "[1,]", "{\"a\" 1}", "01", "1.", "\"\\u0000\"", "\"\\ud83d\"",
          "\"\\ude00\"", "\"a\nb\"", "\"\xff\"", "\"\xc3\"", "{} {}", "NaN", "'x'", "\"\\x\""}) {
        EXPECT_FALSE(IsJsonbSafe(bad)) << bad;
    }
}

TEST(JsonText, DeepNestingIsRefusedNotCrashing) {
    std::string deep(100'000, '[');
    EXPECT_FALSE(IsJsonbSafe(deep));
}

TEST(JsonText, QuoteEscapesAndRepairs) {
    EXPECT_EQ(JsonQuote("plain"), "\"plain\"");
    EXPECT_EQ(JsonQuote("a\"b\\c\nd\x01"), "\"a\\\"b\\\\c\\nd\\u0001\"");
    EXPECT_EQ(JsonQuote(std::string("a\0b", 3)), "\"ab\"");
    EXPECT_EQ(JsonQuote("\xff"), "\"\xEF\xBF\xBD\"");
    EXPECT_TRUE(IsJsonbSafe(JsonQuote("any \xfe\xff bytes \x7f \"")));
}

TEST(JsonText, SanitizeText) {
    EXPECT_EQ(jobq::SanitizeText(std::string("a\0b\xff", 4)), "ab\xEF\xBF\xBD");
    EXPECT_EQ(jobq::SanitizeText("h\xc3\xa9"), "h\xc3\xa9");
}
