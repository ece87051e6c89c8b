// HMAC and base64 through OpenSSL's libcrypto (one-shot APIs only).
#include "hmac.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace jobq {

std::string HmacSha256(std::string_view key, std::string_view message) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char *>(message.data()), message.size(), mac, &mac_len);
    return std::string(reinterpret_cast<char *>(mac), mac_len);
}

std::string Base64Encode(std::string_view bytes) {
    std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char *>(out.data()),
                            reinterpret_cast<const unsigned char *>(bytes.data()),
                            static_cast<int>(bytes.size()));
    out.resize(n);
    return out;
}

std::optional<std::string> Base64Decode(std::string_view text) {
    if (text.size() % 4 != 0) return std::nullopt;
    for (size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '+' || c == '/' || (c == '=' && i + 2 >= text.size());
        if (!ok) return std::nullopt;
    }
    std::string out(3 * (text.size() / 4) + 1, '\0');
    int n = EVP_DecodeBlock(reinterpret_cast<unsigned char *>(out.data()),
                            reinterpret_cast<const unsigned char *>(text.data()),
                            static_cast<int>(text.size()));
    if (n < 0) return std::nullopt;
    // EVP_DecodeBlock counts padding as zero bytes; drop them.
    size_t pad = 0;
    if (!text.empty() && text.back() == '=') ++pad;
    if (text.size() > 1 && text[text.size() - 2] == '=') ++pad;
    out.resize(static_cast<size_t>(n) - pad);
    return out;
}

std::optional<std::string> WebhookKey(std::string_view secret) {
    constexpr std::string_view kPrefix = "whsec_";
    if (secret.substr(0, kPrefix.size()) == kPrefix) {
        auto key = Base64Decode(secret.substr(kPrefix.size()));
        if (!key || key->empty()) return std::nullopt;
        return key;
    }
    return std::string(secret);
}

std::string WebhookSignature(std::string_view key, std::string_view webhook_id,
                             std::string_view timestamp, std::string_view body) {
    std::string message;
    message.reserve(webhook_id.size() + timestamp.size() + body.size() + 2);
    message.append(webhook_id).append(".").append(timestamp).append(".").append(body);
    return "v1," + Base64Encode(HmacSha256(key, message));
}

}  // namespace jobq
