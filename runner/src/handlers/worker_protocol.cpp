// Worker line protocol (see handlers/worker_protocol.h). Parsing uses
// nlohmann::json without exceptions: a child's bytes must never throw.
#include "handlers/worker_protocol.h"

#include <chrono>
#include <cmath>
#include <ctime>

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "json_text.h"

namespace jobq {
namespace {

using nlohmann::json;

// Largest sleep or retry_in accepted: 10 years, far beyond any lease.
constexpr double kMaxSeconds = 10.0 * 365 * 24 * 3600;

// Compact JSON text of a value, jsonb-safe (a string holding \u0000 is
// not: such a value is kept as its text in a JSON string).
std::string JsonbText(const json &value) {
    std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
    return IsJsonbSafe(text) ? text : JsonQuote(text);
}

std::string Iso8601(int64_t unix_ms) {
    std::time_t seconds = static_cast<std::time_t>(unix_ms / 1000);
    std::tm tm{};
    gmtime_r(&seconds, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    return fmt::format("{}.{:03d}Z", buf, static_cast<int>(unix_ms % 1000));
}

// Reads a number of seconds >= 0 from field `name`; false with *error set
// when present but invalid.
bool Seconds(const json &j, const char *name, std::optional<Millis> *out, std::string *error) {
    auto it = j.find(name);
    if (it == j.end() || it->is_null()) return true;
    if (!it->is_number()) {
        *error = fmt::format("\"{}\" must be a number of seconds", name);
        return false;
    }
    double s = it->get<double>();
    if (!std::isfinite(s) || s < 0 || s > kMaxSeconds) {
        *error = fmt::format("\"{}\" must be between 0 and {:.0f} seconds", name, kMaxSeconds);
        return false;
    }
    *out = Millis(static_cast<int64_t>(std::llround(s * 1000)));
    return true;
}

}  // namespace

ParsedLine ParseChildLine(std::string_view line, std::optional<int64_t> implied_id) {
    ParsedLine out;
    json j = json::parse(line.begin(), line.end(), nullptr, false);
    if (j.is_discarded()) {
        out.error = "not valid JSON";
        return out;
    }
    if (!j.is_object()) {
        out.error = "not a JSON object";
        return out;
    }
    ChildMessage m;
    auto id = j.find("id");
    if (id != j.end() && !id->is_null()) {
        if (!id->is_number_integer()) {
            out.error = "\"id\" must be an integer";
            return out;
        }
        m.id = id->get<int64_t>();
        m.has_id = true;
        out.id = m.id;
        if (implied_id && m.id != *implied_id) {
            out.error = "\"id\" names another job";
            return out;
        }
    } else if (implied_id) {
        m.id = *implied_id;
        m.has_id = true;
    }
    auto type_it = j.find("type");
    if (type_it == j.end() || !type_it->is_string()) {
        out.error = "\"type\" missing or not a string";
        return out;
    }
    const std::string &type = type_it->get_ref<const std::string &>();
    auto need_id = [&]() {
        if (!m.has_id) out.error = fmt::format("\"{}\" needs an integer \"id\"", type);
        return m.has_id;
    };
    auto optional_json = [&](const char *name) -> std::optional<std::string> {
        auto it = j.find(name);
        if (it == j.end()) return std::nullopt;
        return JsonbText(*it);
    };
    std::string error;
    if (type == "ready") {
        m.type = ChildMessageType::kReady;
        auto p = j.find("protocol");
        if (p == j.end() || !p->is_number_integer()) {
            out.error = "\"ready\" needs an integer \"protocol\"";
            return out;
        }
        m.protocol = p->get<int>();
    } else if (type == "progress") {
        m.type = ChildMessageType::kProgress;
        if (!need_id()) return out;
        m.progress = optional_json("progress");
        m.state = optional_json("state");
        if (!m.progress && !m.state) {
            out.error = "\"progress\" needs a \"progress\" or \"state\" field";
            return out;
        }
    } else if (type == "heartbeat") {
        m.type = ChildMessageType::kHeartbeat;
        if (!need_id()) return out;
    } else if (type == "sleep") {
        m.type = ChildMessageType::kSleep;
        if (!need_id()) return out;
        std::optional<Millis> seconds;
        if (!Seconds(j, "seconds", &seconds, &error)) {
            out.error = error;
            return out;
        }
        if (!seconds) {
            out.error = "\"sleep\" needs \"seconds\"";
            return out;
        }
        m.sleep_for = *seconds;
        m.state = optional_json("state");
        if (m.state && *m.state == "null") m.state.reset();
    } else if (type == "complete") {
        m.type = ChildMessageType::kComplete;
        if (!need_id()) return out;
        m.result = optional_json("result");
    } else if (type == "fail") {
        m.type = ChildMessageType::kFail;
        if (!need_id()) return out;
        auto e = j.find("error");
        if (e != j.end() && !e->is_null()) {
            m.error = e->is_string() ? SanitizeText(e->get_ref<const std::string &>())
                                     : e->dump(-1, ' ', false, json::error_handler_t::replace);
        }
        if (m.error.empty()) m.error = "failed";
        if (!Seconds(j, "retry_in", &m.retry_in, &error)) {
            out.error = error;
            return out;
        }
        auto d = j.find("discard");
        if (d != j.end() && !d->is_null()) {
            if (!d->is_boolean()) {
                out.error = "\"discard\" must be true or false";
                return out;
            }
            m.discard = d->get<bool>();
        }
    } else if (type == "log") {
        m.type = ChildMessageType::kLog;
        auto msg = j.find("message");
        if (msg == j.end() || !msg->is_string()) {
            out.error = "\"log\" needs a string \"message\"";
            return out;
        }
        m.message = SanitizeText(msg->get_ref<const std::string &>());
        auto level = j.find("level");
        if (level != j.end() && level->is_string()) m.level = level->get<std::string>();
    } else {
        out.error = fmt::format("unknown type \"{}\"", SanitizeText(type.substr(0, 40)));
        return out;
    }
    out.message = std::move(m);
    return out;
}

std::optional<int64_t> PeekJobId(std::string_view prefix) {
    size_t at = prefix.find("\"id\"");
    if (at == std::string_view::npos) return std::nullopt;
    size_t i = at + 4;
    while (i < prefix.size() && (prefix[i] == ' ' || prefix[i] == '\t')) ++i;
    if (i >= prefix.size() || prefix[i] != ':') return std::nullopt;
    ++i;
    while (i < prefix.size() && (prefix[i] == ' ' || prefix[i] == '\t')) ++i;
    size_t start = i;
    while (i < prefix.size() && i - start < 19 && prefix[i] >= '0' && prefix[i] <= '9') ++i;
    if (i == start || i >= prefix.size()) return std::nullopt;  // digits must end in view
    if (prefix[i] != ',' && prefix[i] != '}' && prefix[i] != ' ') return std::nullopt;
    return std::stoll(std::string(prefix.substr(start, i - start)));
}

std::string HelloLine(const std::string &queue, int concurrency) {
    return fmt::format("{{\"type\":\"hello\",\"protocol\":{},\"queue\":{},\"concurrency\":{}}}\n",
                       kWorkerProtocolVersion, JsonQuote(queue), concurrency);
}

std::string StartLine(const ClaimedJob &job, int64_t deadline_unix_ms, Millis timeout) {
    // payload, progress and saved state are jsonb output from the server:
    // valid JSON on one line (jsonb escapes newlines inside strings).
    return fmt::format(
        "{{\"type\":\"start\",\"id\":{},\"queue\":{},\"attempt\":{},\"payload\":{},"
        "\"deadline\":\"{}\",\"timeout_ms\":{},\"state\":{},\"progress\":{},\"trace\":null}}\n",
        job.id, JsonQuote(job.queue), job.attempt, job.payload.empty() ? "null" : job.payload,
        Iso8601(deadline_unix_ms), timeout.count(), job.saved_state.value_or("null"),
        job.progress.value_or("null"));
}

std::string CancelLine(int64_t id, std::string_view reason) {
    return fmt::format("{{\"type\":\"cancel\",\"id\":{},\"reason\":{}}}\n", id, JsonQuote(reason));
}

std::string ShutdownLine() { return "{\"type\":\"shutdown\"}\n"; }

}  // namespace jobq
