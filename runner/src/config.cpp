// TOML config loading with strict validation (see config.h).
#include "config.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <libpq-fe.h>
#include <toml++/toml.h>

#include "hmac.h"

namespace jobq {
namespace {

[[noreturn]] void Fail(const std::string &key, const std::string &problem) {
    throw ConfigError(fmt::format("{}: {}", key, problem));
}

void CheckKeys(const toml::table &table, const std::string &prefix,
               const std::set<std::string> &allowed) {
    for (auto &&[k, v] : table) {
        std::string key(k.str());
        if (!allowed.count(key)) Fail(prefix + key, "unknown setting");
    }
}

std::optional<std::string> GetString(const toml::table &table, const std::string &prefix,
                                     const char *key) {
    const toml::node *node = table.get(key);
    if (!node) return std::nullopt;
    if (!node->is_string()) Fail(prefix + key, "must be a string");
    return node->as_string()->get();
}

std::optional<long long> GetInteger(const toml::table &table, const std::string &prefix,
                                    const char *key, long long min, long long max) {
    const toml::node *node = table.get(key);
    if (!node) return std::nullopt;
    if (!node->is_integer()) Fail(prefix + key, "must be an integer");
    long long v = node->as_integer()->get();
    if (v < min || v > max) Fail(prefix + key, fmt::format("must be between {} and {}", min, max));
    return v;
}

std::optional<Millis> GetDuration(const toml::table &table, const std::string &prefix,
                                  const char *key, bool allow_zero = false) {
    const toml::node *node = table.get(key);
    if (!node) return std::nullopt;
    std::optional<Millis> d;
    if (node->is_integer()) {
        long long secs = node->as_integer()->get();
        if (secs >= 0 && secs < 1'000'000'000LL) d = Millis(secs * 1000);
    } else if (node->is_string()) {
        d = ParseDuration(node->as_string()->get());
    } else {
        Fail(prefix + key, "must be a duration such as \"30s\", \"500ms\" or \"2m\"");
    }
    if (!d) Fail(prefix + key, "invalid duration (use e.g. \"30s\", \"500ms\", \"2m\")");
    if (!allow_zero && d->count() <= 0) Fail(prefix + key, "must be greater than zero");
    return d;
}

const toml::table *GetTable(const toml::table &root, const char *key) {
    const toml::node *node = root.get(key);
    if (!node) return nullptr;
    if (!node->is_table()) Fail(key, "must be a table");
    return node->as_table();
}

std::string ResolveCommand(const std::string &key, const std::string &program) {
    if (program.empty()) Fail(key, "program name is empty");
    if (program.find('/') != std::string::npos) {
        if (access(program.c_str(), X_OK) != 0)
            Fail(key, fmt::format("\"{}\" is not executable", program));
        return program;
    }
    const char *path = std::getenv("PATH");
    std::stringstream dirs(path ? path : "/usr/local/bin:/usr/bin:/bin");
    std::string dir;
    while (std::getline(dirs, dir, ':')) {
        if (dir.empty()) continue;
        std::string candidate = dir + "/" + program;
        if (access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    Fail(key, fmt::format("\"{}\" not found in PATH", program));
}

QueueConfig ParseQueue(const std::string &name, const toml::node &node, const EnvLookup &env) {
    const std::string prefix = "queues." + name + ".";
    static const std::regex kQueueName("^[a-z0-9][a-z0-9_.-]{0,47}$");
    if (!std::regex_match(name, kQueueName)) {
        Fail("queues." + name,
             "invalid queue name (lower-case letters, digits, '_', '.', '-'; at most 48)");
    }
    if (!node.is_table()) Fail("queues." + name, "must be a table");
    const toml::table &t = *node.as_table();
    QueueConfig q;
    q.name = name;

    auto handler = GetString(t, prefix, "handler");
    if (!handler)
        Fail(prefix + "handler", "missing (one of \"exec\", \"http\", \"worker\", \"noop\")");
    if (*handler == "exec")
        q.handler = HandlerKind::kExec;
    else if (*handler == "http")
        q.handler = HandlerKind::kHttp;
    else if (*handler == "noop")
        q.handler = HandlerKind::kNoop;
    else if (*handler == "worker")
        q.handler = HandlerKind::kWorker;
    else
        Fail(prefix + "handler",
             fmt::format("unknown handler \"{}\" (one of \"exec\", \"http\", \"worker\", \"noop\")",
                         *handler));

    std::set<std::string> allowed = {"handler", "concurrency", "claim_batch", "timeout",
                                     "lease",   "heartbeat",   "max_output"};
    if (q.handler == HandlerKind::kExec) {
        allowed.insert({"command", "retry_exit_code", "discard_exit_code", "kill_grace"});
    } else if (q.handler == HandlerKind::kHttp) {
        allowed.insert({"url", "secret", "secret_env", "ca_file"});
    } else if (q.handler == HandlerKind::kWorker) {
        allowed.insert({"command", "processes", "kill_grace"});
    }
    for (auto &&[k, v] : t) {
        std::string key(k.str());
        if (allowed.count(key)) continue;
        static const std::set<std::string> kOtherHandlers = {
            "command", "retry_exit_code", "discard_exit_code", "kill_grace", "url",
            "secret",  "secret_env",      "ca_file",           "processes"};
        if (kOtherHandlers.count(key))
            Fail(prefix + key, fmt::format("not valid for handler \"{}\"", *handler));
        Fail(prefix + key, "unknown setting");
    }

    if (auto v = GetInteger(t, prefix, "concurrency", 1, 100'000))
        q.concurrency = static_cast<int>(*v);
    // 10000: jobq.claim's own limit on max_jobs.
    if (auto v = GetInteger(t, prefix, "claim_batch", 1, 10'000))
        q.claim_batch = static_cast<int>(*v);
    if (auto v = GetDuration(t, prefix, "timeout")) q.timeout = *v;
    if (auto v = GetDuration(t, prefix, "lease")) {
        // The bounds jobq.claim enforces (docs/api.md): outside them every
        // claim of the queue would fail.
        if (*v < Millis(1000)) Fail(prefix + "lease", "must be at least 1s");
        if (*v > Millis(7LL * 24 * 3600 * 1000)) Fail(prefix + "lease", "must be at most 7d");
        q.lease = *v;
    }
    if (auto v = GetDuration(t, prefix, "heartbeat")) q.heartbeat = *v;
    if (q.heartbeat && q.lease && *q.heartbeat >= *q.lease)
        Fail(prefix + "heartbeat", "must be shorter than the lease");
    if (auto v = GetInteger(t, prefix, "max_output", 0, 64LL << 20))
        q.max_output = static_cast<size_t>(*v);

    if (q.handler == HandlerKind::kExec || q.handler == HandlerKind::kWorker) {
        const toml::node *cmd = t.get("command");
        if (!cmd)
            Fail(prefix + "command",
                 fmt::format("missing (required for handler = \"{}\")", HandlerName(q.handler)));
        if (!cmd->is_array() || cmd->as_array()->empty())
            Fail(prefix + "command", "must be a non-empty array of strings");
        for (const toml::node &arg : *cmd->as_array()) {
            if (!arg.is_string()) Fail(prefix + "command", "must be a non-empty array of strings");
            q.command.push_back(arg.as_string()->get());
        }
        q.command[0] = ResolveCommand(prefix + "command", q.command[0]);
        if (auto v = GetDuration(t, prefix, "kill_grace")) q.kill_grace = *v;
    }
    if (q.handler == HandlerKind::kWorker) {
        if (auto v = GetInteger(t, prefix, "processes", 1, 1000))
            q.processes = static_cast<int>(*v);
        if (q.concurrency * static_cast<int64_t>(q.processes) > 100'000)
            Fail(prefix + "processes", "processes * concurrency must be at most 100000");
    } else if (q.handler == HandlerKind::kExec) {
        if (auto v = GetInteger(t, prefix, "retry_exit_code", 1, 255))
            q.retry_exit_code = static_cast<int>(*v);
        if (auto v = GetInteger(t, prefix, "discard_exit_code", 1, 255))
            q.discard_exit_code = static_cast<int>(*v);
        if (q.retry_exit_code == q.discard_exit_code)
            Fail(prefix + "discard_exit_code", "must differ from retry_exit_code");
    } else if (q.handler == HandlerKind::kHttp) {
        auto url = GetString(t, prefix, "url");
        if (!url) Fail(prefix + "url", "missing (required for handler = \"http\")");
        if (url->rfind("http://", 0) != 0 && url->rfind("https://", 0) != 0)
            Fail(prefix + "url", "must start with http:// or https://");
        if (url->find_first_of(" \t\r\n") != std::string::npos)
            Fail(prefix + "url", "must not contain whitespace");
        q.url = *url;
        auto secret = GetString(t, prefix, "secret");
        auto secret_env = GetString(t, prefix, "secret_env");
        if (secret && secret_env)
            Fail(prefix + "secret", "set either secret or secret_env, not both");
        std::string raw;
        if (secret) {
            raw = *secret;
            if (raw.empty()) Fail(prefix + "secret", "must not be empty");
        } else if (secret_env) {
            auto value = env(*secret_env);
            if (!value || value->empty())
                Fail(prefix + "secret_env",
                     fmt::format("environment variable {} is not set or empty", *secret_env));
            raw = *value;
        } else {
            Fail(prefix + "secret_env",
                 "missing (every delivery is signed: set secret_env or secret)");
        }
        auto key = WebhookKey(raw);
        if (!key)
            Fail(secret ? prefix + "secret" : prefix + "secret_env",
                 "a \"whsec_\" secret must be base64 after the prefix");
        q.secret_key = *key;
        if (auto v = GetString(t, prefix, "ca_file")) {
            if (access(v->c_str(), R_OK) != 0)
                Fail(prefix + "ca_file", fmt::format("cannot read \"{}\"", *v));
            q.ca_file = *v;
        }
    }
    return q;
}

}  // namespace

const char *HandlerName(HandlerKind kind) {
    switch (kind) {
        case HandlerKind::kExec:
            return "exec";
        case HandlerKind::kHttp:
            return "http";
        case HandlerKind::kNoop:
            return "noop";
        case HandlerKind::kWorker:
            return "worker";
    }
    return "?";
}

std::optional<std::string> ProcessEnv(const std::string &name) {
    const char *v = std::getenv(name.c_str());
    if (!v) return std::nullopt;
    return std::string(v);
}

void CheckDsn(const std::string &key, const std::string &dsn) {
    // What libpq takes for a connection string rather than a database name
    // (the runner passes the dsn as dbname with expand_dbname).
    bool uri = dsn.rfind("postgresql://", 0) == 0 || dsn.rfind("postgres://", 0) == 0;
    if (!uri && dsn.find('=') == std::string::npos) return;
    char *error = nullptr;
    PQconninfoOption *options = PQconninfoParse(dsn.c_str(), &error);
    if (options) {
        PQconninfoFree(options);
        return;
    }
    std::string why = error ? error : "out of memory";
    if (error) PQfreemem(error);
    while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
    throw ConfigError(fmt::format("{}: invalid connection string: {}", key, why));
}

void ParseListen(const std::string &key, const std::string &value, std::string *host, int *port) {
    auto colon = value.rfind(':');
    if (colon == std::string::npos) Fail(key, "must be \"host:port\", e.g. \"127.0.0.1:9187\"");
    std::string h = value.substr(0, colon);
    std::string p = value.substr(colon + 1);
    if (h == "localhost") h = "127.0.0.1";
    if (h.empty()) h = "0.0.0.0";
    in_addr addr{};
    if (inet_pton(AF_INET, h.c_str(), &addr) != 1)
        Fail(key, fmt::format("\"{}\" is not an IPv4 address", h));
    if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos)
        Fail(key, "invalid port");
    int n = std::stoi(p);
    if (n < 0 || n > 65535) Fail(key, "invalid port");
    *host = h;
    *port = n;
}

Config ParseConfig(std::string_view toml_text, const std::string &origin, const EnvLookup &env) {
    toml::table root;
    try {
        root = toml::parse(toml_text, origin);
    } catch (const toml::parse_error &e) {
        throw ConfigError(fmt::format("{}:{}:{}: {}", origin, e.source().begin.line,
                                      e.source().begin.column, e.description()));
    }
    CheckKeys(root, "", {"database", "http", "runner", "queues"});
    Config c;
    if (const toml::table *db = GetTable(root, "database")) {
        CheckKeys(*db, "database.", {"dsn", "pool_mode", "listen_dsn"});
        if (auto v = GetString(*db, "database.", "dsn")) {
            CheckDsn("database.dsn", *v);
            c.dsn = *v;
        }
        if (auto v = GetString(*db, "database.", "pool_mode")) {
            if (*v == "session")
                c.pool_mode = PoolMode::kSession;
            else if (*v == "transaction")
                c.pool_mode = PoolMode::kTransaction;
            else
                throw ConfigError(fmt::format(
                    "database.pool_mode: \"{}\" is not \"session\" or \"transaction\"", *v));
        }
        if (auto v = GetString(*db, "database.", "listen_dsn")) {
            CheckDsn("database.listen_dsn", *v);
            c.listen_dsn = *v;
        }
    }
    if (const toml::table *http = GetTable(root, "http")) {
        CheckKeys(*http, "http.", {"listen"});
        if (auto v = GetString(*http, "http.", "listen")) {
            std::string host;
            int port;
            ParseListen("http.listen", *v, &host, &port);
            c.listen = *v;
        }
    }
    if (const toml::table *r = GetTable(root, "runner")) {
        CheckKeys(*r, "runner.",
                  {"worker", "poll_interval", "grace_period", "reconnect_min", "reconnect_max",
                   "query_timeout", "durable_claims"});
        if (auto v = GetString(*r, "runner.", "worker")) {
            if (v->empty()) Fail("runner.worker", "must not be empty");
            c.worker = *v;
        }
        if (auto v = GetDuration(*r, "runner.", "poll_interval")) c.poll_interval = *v;
        if (auto v = GetDuration(*r, "runner.", "grace_period", true)) c.grace_period = *v;
        if (auto v = GetDuration(*r, "runner.", "reconnect_min")) c.reconnect_min = *v;
        if (auto v = GetDuration(*r, "runner.", "reconnect_max")) c.reconnect_max = *v;
        if (auto v = GetDuration(*r, "runner.", "query_timeout")) c.query_timeout = *v;
        if (const toml::node *n = r->get("durable_claims")) {
            if (!n->is_boolean()) Fail("runner.durable_claims", "must be true or false");
            c.durable_claims = n->as_boolean()->get();
        }
        if (c.reconnect_max < c.reconnect_min)
            Fail("runner.reconnect_max", "must not be less than reconnect_min");
    }
    const toml::table *queues = GetTable(root, "queues");
    if (!queues || queues->empty())
        Fail("queues", "missing: configure at least one [queues.NAME] table");
    for (auto &&[k, v] : *queues) {
        c.queues.push_back(ParseQueue(std::string(k.str()), v, env));
    }
    return c;
}

Config LoadConfigFile(const std::string &path, const EnvLookup &env) {
    std::ifstream in(path);
    if (!in) throw ConfigError(fmt::format("--config: cannot read \"{}\"", path));
    std::stringstream text;
    text << in.rdbuf();
    return ParseConfig(text.str(), path, env);
}

}  // namespace jobq
