// HMAC-SHA256 against RFC 4231, base64, and the Standard Webhooks header.
#include <gtest/gtest.h>

#include <string>

#include "hmac.h"

namespace {

std::string Hex(const std::string &bytes) {
    static const char *digits = "0123456789abcdef";
    std::string out;
    for (unsigned char c : bytes) {
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out;
}

std::string Unhex(const std::string &hex) {
    std::string out;
    for (size_t i = 0; i + 1 < hex.size(); i += 2)
        out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
    return out;
}

}  // namespace

// RFC 4231 section 4: test cases 1-4, 6, 7 (case 5 tests truncation).
TEST(HmacSha256, Rfc4231Case1) {
    EXPECT_EQ(Hex(jobq::HmacSha256(std::string(20, '\x0b'), "Hi There")),
              "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}
TEST(HmacSha256, Rfc4231Case2) {
    EXPECT_EQ(Hex(jobq::HmacSha256("Jefe", "what do ya want for nothing?")),
              "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}
TEST(HmacSha256, Rfc4231Case3) {
    EXPECT_EQ(Hex(jobq::HmacSha256(std::string(20, '\xaa'), std::string(50, '\xdd'))),
              "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
}
TEST(HmacSha256, Rfc4231Case4) {
    EXPECT_EQ(Hex(jobq::HmacSha256(Unhex("0102030405060708090a0b0c0d0e0f10111213141516171819"),
                                   std::string(50, '\xcd'))),
              "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
}
TEST(HmacSha256, Rfc4231Case5Truncated) {
    EXPECT_EQ(Hex(jobq::HmacSha256(std::string(20, '\x0c'), "Test With Truncation")).substr(0, 32),
              "a3b6167473100ee06e0c796c2955552b");
}
TEST(HmacSha256, Rfc4231Case6) {
    EXPECT_EQ(Hex(jobq::HmacSha256(std::string(131, '\xaa'),
                                   "Test Using Larger Than Block-Size Key - Hash Key First")),
              "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}
TEST(HmacSha256, Rfc4231Case7) {
    EXPECT_EQ(
        Hex(jobq::HmacSha256(
            std::string(131, '\xaa'),
            "This is a test using a larger than block-size key and a larger than block-size data. "
            "The key needs to be hashed before being used by the HMAC algorithm.")),
        "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
}

TEST(Base64, RoundTripAndPadding) {
    EXPECT_EQ(jobq::Base64Encode(""), "");
    EXPECT_EQ(jobq::Base64Encode("f"), "Zg==");
    EXPECT_EQ(jobq::Base64Encode("fo"), "Zm8=");
    EXPECT_EQ(jobq::Base64Encode("foo"), "Zm9v");
    EXPECT_EQ(jobq::Base64Decode("Zg=="), std::string("f"));
    EXPECT_EQ(jobq::Base64Decode("Zm8="), std::string("fo"));
    EXPECT_EQ(jobq::Base64Decode("Zm9vYmFy"), std::string("foobar"));
    EXPECT_FALSE(jobq::Base64Decode("Zm9").has_value());
    EXPECT_FALSE(jobq::Base64Decode("Zm!v").has_value());
}

TEST(WebhookSignature, HeaderFormat) {
    std::string sig = jobq::WebhookSignature("secret", "job_42", "1700000000", "{\"id\":42}");
    ASSERT_EQ(sig.substr(0, 3), "v1,");
    auto mac = jobq::Base64Decode(sig.substr(3));
    ASSERT_TRUE(mac.has_value());
    EXPECT_EQ(mac->size(), 32u);
    EXPECT_EQ(*mac, jobq::HmacSha256("secret", "job_42.1700000000.{\"id\":42}"));
}

// The example from the Standard Webhooks reference implementation.
TEST(WebhookSignature, StandardWebhooksVector) {
    auto key = jobq::WebhookKey("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    ASSERT_TRUE(key.has_value());
    EXPECT_EQ(jobq::WebhookSignature(*key, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330",
                                     "{\"test\": 2432232314}"),
              "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

TEST(WebhookKey, PlainAndPrefixedSecrets) {
    EXPECT_EQ(jobq::WebhookKey("plain secret"), std::string("plain secret"));
    EXPECT_EQ(jobq::WebhookKey("whsec_Zm9vYmFy"), std::string("foobar"));
    EXPECT_FALSE(jobq::WebhookKey("whsec_not base64!").has_value());
    EXPECT_FALSE(jobq::WebhookKey("whsec_").has_value());
}
