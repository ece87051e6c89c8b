// Webhook signing (Standard Webhooks): HMAC-SHA256 over
// "<webhook-id>.<webhook-timestamp>.<body>", sent as
// `webhook-signature: v1,<base64 of the MAC>`.
//
// Vocabulary: the *secret* is the configured string; a secret that starts
// with "whsec_" is base64 of the key bytes (the Standard Webhooks convention),
// any other secret is used as the key bytes as written.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace jobq {

// Raw 32-byte HMAC-SHA256 of message under key.
std::string HmacSha256(std::string_view key, std::string_view message);

std::string Base64Encode(std::string_view bytes);
// std::nullopt when text is not valid (padded) base64.
std::optional<std::string> Base64Decode(std::string_view text);

// The key bytes for a configured secret; std::nullopt for a malformed
// "whsec_" secret.
std::optional<std::string> WebhookKey(std::string_view secret);

// The webhook-signature header value: "v1,<base64>".
std::string WebhookSignature(std::string_view key, std::string_view webhook_id,
                             std::string_view timestamp, std::string_view body);

}  // namespace jobq
