// The runner's configuration: a TOML file, then command-line overrides.
//
// Vocabulary: a *setting* is addressed by its dotted key path
// ("queues.emails.timeout"); every ConfigError names the setting it is
// about, so a wrong or missing setting fails at start with a message that
// points at the line to fix. Unknown keys are errors too (typos must not be
// silently ignored). The keys are documented in docs/runner.md.
#pragma once

#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "duration.h"

namespace jobq {

class ConfigError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

enum class HandlerKind { kExec, kHttp, kNoop, kWorker };

const char *HandlerName(HandlerKind kind);

struct QueueConfig {
    std::string name;
    HandlerKind handler = HandlerKind::kNoop;
    int concurrency = 10;  // worker: jobs in flight per process
    int processes = 1;     // worker: long-lived processes
    // Most jobs one claim takes. A large free capacity is filled by several
    // claims in a row, each next one sent as soon as the previous returns, so
    // the first handlers start while the database claims the next step.
    int claim_batch = 1000;
    Millis timeout{30'000};
    std::optional<Millis> lease;      // unset: the queue's lease in the database
    std::optional<Millis> heartbeat;  // unset: a third of the lease
    size_t max_output = 1 << 20;      // bytes of stdout / response body kept

    // Jobs in flight at most for the whole queue.
    int Slots() const {
        return handler == HandlerKind::kWorker ? processes * concurrency : concurrency;
    }

    // exec and worker
    std::vector<std::string> command;  // argv; command[0] resolved to an absolute path
    int retry_exit_code = 75;          // EX_TEMPFAIL: retry with backoff
    int discard_exit_code = 65;        // EX_DATAERR: dead at once
    Millis kill_grace{5'000};  // SIGTERM to SIGKILL on timeout; worker: to end a cancelled job

    // http
    std::string url;
    std::string secret_key;  // key bytes (from secret or secret_env)
    std::string ca_file;     // extra CA bundle; empty: the system store
};

// How the dsn's connections are pooled (docs/runner.md, "Poolers").
//   kSession      a session of its own (PostgreSQL, or a session-mode pool):
//                 prepared claims, LISTEN on the same dsn
//   kTransaction  another client may get the server connection after every
//                 transaction: no prepared statements, no LISTEN there
enum class PoolMode { kSession, kTransaction };

struct Config {
    std::string dsn;  // empty: libpq defaults and PG* variables
    PoolMode pool_mode = PoolMode::kSession;
    // Where to LISTEN for wake-ups; empty: dsn in session mode, none (polling
    // only) in transaction mode.
    std::string listen_dsn;
    std::string listen;  // "host:port" for /metrics and /healthz; empty: off
    std::string worker;  // the worker name recorded on claims
    Millis poll_interval{5'000};
    Millis grace_period{30'000};
    Millis reconnect_min{100};
    Millis reconnect_max{10'000};
    Millis query_timeout{30'000};
    // false: claims commit with synchronous_commit = off (no WAL flush wait
    // on the path to a handler's start). A claim lost in a server crash
    // only means the job runs again; enqueues and settles stay durable.
    bool durable_claims = false;
    std::vector<QueueConfig> queues;
};

using EnvLookup = std::function<std::optional<std::string>(const std::string &)>;

// The process environment.
std::optional<std::string> ProcessEnv(const std::string &name);

// Parses the TOML text of a config file; `origin` names it in errors.
Config ParseConfig(std::string_view toml_text, const std::string &origin,
                   const EnvLookup &env = ProcessEnv);

Config LoadConfigFile(const std::string &path, const EnvLookup &env = ProcessEnv);

// Throws ConfigError (naming `key`) unless `dsn` is empty, a plain database
// name, or a connection string / URI that libpq can parse.
void CheckDsn(const std::string &key, const std::string &dsn);

// Parses "host:port" (IPv4 literal or "localhost"); throws ConfigError
// naming `key`.
void ParseListen(const std::string &key, const std::string &value, std::string *host, int *port);

}  // namespace jobq
