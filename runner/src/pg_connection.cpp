// Asynchronous libpq connection (see pg_connection.h for the protocol).
#include "pg_connection.h"

#include <sys/epoll.h>
#include <unistd.h>

#include <fmt/format.h>

#include "log.h"

namespace jobq {
namespace {
// libpq messages end in a newline and may carry a second line of hints
// ("Is the server running ..."); the first line says what happened.
std::string Trimmed(const char *message) {
    std::string s = message ? message : "";
    s = s.substr(0, s.find('\n'));
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s;
}

constexpr Millis kRepeatFailureLog{60'000};

// Server messages outside a statement's result (NOTICEs, and the FATAL a
// terminated backend sends before closing) would go to stderr as raw text
// through libpq's default processor; log them as logfmt lines instead.
// Warnings and worse are shown always, notices only with --verbose.
// Called from libpq's C code: no exception may leave it.
void OnServerMessage(void *arg, const PGresult *res) noexcept {
    try {
        const auto *role = static_cast<const std::string *>(arg);
        const char *severity = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
        const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        std::string sev = severity ? severity : "NOTICE";
        bool loud = sev == "WARNING" || sev == "ERROR" || sev == "FATAL" || sev == "PANIC";
        Log(loud ? LogLevel::kWarn : LogLevel::kDebug, "server message",
            {{"conn", *role},
             {"severity", sev},
             {"message", primary ? std::string(primary) : Trimmed(PQresultErrorMessage(res))}});
    } catch (...) {
        // Out of memory while logging: the message is lost, the runner goes on.
    }
}

// libpq's view of text parameters: NULL for SQL NULL.
std::vector<const char *> ParamPointers(const std::vector<std::optional<std::string>> &params) {
    std::vector<const char *> values;
    values.reserve(params.size());
    for (const auto &p : params) values.push_back(p ? p->c_str() : nullptr);
    return values;
}

}  // namespace

bool TransientSqlState(const std::string &sqlstate) {
    std::string cls = sqlstate.substr(0, 2);
    return cls == "08" || cls == "40" || cls == "53" || cls == "57" || cls == "55";
}

bool UnhealableConnectError(const std::string &message, bool needs_password) {
    if (needs_password) return true;  // no password given, and one is required
    for (const char *pattern :
         {"authentication failed for user",  // 28P01 password, peer, ident, ...
          "no pg_hba.conf entry for",        // 28000
          "pg_hba.conf rejects connection",  // 28000
          "is not permitted to log in",      // 28000
          "does not exist",                  // 3D000 database, 28000 role
          "permission denied for database",  // 42501 no CONNECT privilege
          "no such database",                // PgBouncer: not in its [databases]
          "invalid connection option", "invalid sslmode value", "invalid integer value"}) {
        if (message.find(pattern) != std::string::npos) return true;
    }
    return false;
}

PgConnection::PgConnection(EventLoop &loop, Options options, Callbacks callbacks)
    : loop_(loop),
      options_(std::move(options)),
      callbacks_(std::move(callbacks)),
      backoff_(options_.reconnect_min, options_.reconnect_max,
               static_cast<uint64_t>(getpid()) * 7919u +
                   static_cast<uint64_t>(SteadyClock::now().time_since_epoch().count())) {}

PgConnection::~PgConnection() { Close(); }

void PgConnection::Start() { BeginConnect(); }

void PgConnection::Close() {
    closed_ = true;
    loop_.Cancel(retry_timer_);
    loop_.Cancel(deadline_timer_);
    if (socket_ >= 0) loop_.Unwatch(socket_);
    socket_ = -1;
    conn_.reset();
    ready_ = connecting_ = false;
    callback_ = nullptr;
}

void PgConnection::WatchSocket(uint32_t events) {
    int fd = PQsocket(conn_.get());
    if (fd != socket_ && socket_ >= 0) loop_.Unwatch(socket_);
    socket_ = fd;
    if (fd < 0) return;
    // Watch() replaces (or re-adds) the registration, which covers a socket
    // that libpq closed and reopened under the same number.
    loop_.Watch(fd, events, [this](uint32_t ev) { OnSocket(ev); });
}

void PgConnection::BeginConnect() {
    if (closed_) return;
    // Our defaults come first so a dsn that sets its own wins; dbname is
    // expanded as a connection string; empty values fall back to PG* vars.
    // Keepalives notice a silently dead server on the idle listen
    // connection within about a minute instead of hours.
    const char *keywords[] = {"application_name",
                              "client_encoding",
                              "keepalives_idle",
                              "keepalives_interval",
                              "keepalives_count",
                              "dbname",
                              nullptr};
    const char *values[] = {"jobq-runner", "UTF8", "30", "10", "3", options_.dsn.c_str(), nullptr};
    prepared_.clear();  // a new session knows none
    conn_.reset(PQconnectStartParams(keywords, values, 1));
    if (!conn_ || PQstatus(conn_.get()) == CONNECTION_BAD) {
        if (!conn_) return Lost("out of memory");
        return ConnectFailed(Trimmed(PQerrorMessage(conn_.get())));
    }
    PQsetNoticeReceiver(conn_.get(), OnServerMessage, &options_.role);
    connecting_ = true;
    loop_.Cancel(deadline_timer_);
    deadline_timer_ = loop_.After(options_.connect_timeout, [this] {
        deadline_timer_ = 0;
        Lost("connect timed out");
    });
    // libpq: behave as if PQconnectPoll had returned PGRES_POLLING_WRITING.
    WatchSocket(EPOLLOUT);
}

void PgConnection::ConnectStep() {
    PostgresPollingStatusType status = PQconnectPoll(conn_.get());
    switch (status) {
        case PGRES_POLLING_READING:
            WatchSocket(EPOLLIN);
            return;
        case PGRES_POLLING_WRITING:
            WatchSocket(EPOLLOUT);
            return;
        case PGRES_POLLING_FAILED:
            ConnectFailed(Trimmed(PQerrorMessage(conn_.get())));
            return;
        case PGRES_POLLING_OK:
            break;
        default:
            return;
    }
    loop_.Cancel(deadline_timer_);
    connecting_ = false;
    if (PQsetnonblocking(conn_.get(), 1) != 0) {
        Lost(Trimmed(PQerrorMessage(conn_.get())));
        return;
    }
    WatchSocket(EPOLLIN);
    ready_ = true;
    backoff_.Reset();
    failures_ = 0;
    if (ever_ready_) {
        ++reconnects_;
        Log(LogLevel::kNotice, "reconnected to database", {{"conn", options_.role}});
    }
    ever_ready_ = true;
    Log(LogLevel::kDebug, "connected to database", {{"conn", options_.role}});
    if (callbacks_.on_ready) callbacks_.on_ready();
}

void PgConnection::OnSocket(uint32_t events) {
    if (!conn_) return;
    if (connecting_) {
        ConnectStep();
        return;
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        if (PQconsumeInput(conn_.get()) == 0) {
            Lost(Trimmed(PQerrorMessage(conn_.get())));
            return;
        }
        DrainNotifies();
        if (!conn_) return;
    }
    // A read may be what the server needed before accepting more of our
    // output, so retry the flush on either event.
    if (flushing_) {
        Flush();
        if (!conn_) return;
    }
    if (callback_ && !flushing_) ReadResults();
}

void PgConnection::DrainNotifies() {
    while (PGnotify *n = PQnotifies(conn_.get())) {
        std::string channel = n->relname ? n->relname : "";
        std::string payload = n->extra ? n->extra : "";
        PQfreemem(n);
        if (callbacks_.on_notify) callbacks_.on_notify(channel, payload);
        if (!conn_) return;
    }
}

bool PgConnection::Send(const std::string &sql,
                        const std::vector<std::optional<std::string>> &params,
                        OutcomeCallback callback) {
    std::vector<const char *> values = ParamPointers(params);
    return Dispatch(
        [&] {
            return PQsendQueryParams(conn_.get(), sql.c_str(), static_cast<int>(values.size()),
                                     nullptr, values.data(), nullptr, nullptr, 0);
        },
        std::move(callback));
}

bool PgConnection::SendPrepared(const std::string &name, const std::string &sql,
                                const std::vector<std::optional<std::string>> &params,
                                OutcomeCallback callback) {
    if (!idle()) return false;
    if (!options_.prepare || pooled_) return Send(sql, params, std::move(callback));
    if (prepared_.count(name) == 0) {
        // Prepare, then send again: the statement itself goes out when the
        // server has accepted it.
        return Dispatch(
            [&] {
                return PQsendPrepare(conn_.get(), name.c_str(), sql.c_str(),
                                     static_cast<int>(params.size()), nullptr);
            },
            [this, name, sql, params, callback = std::move(callback)](PgOutcome outcome) mutable {
                // 42P05: this session never prepared it, yet it exists: the
                // server connection was some other client's.
                if (outcome.sqlstate == "42P05") return BecomePooled(sql, params, callback);
                if (outcome.failure != PgFailure::kNone) {
                    callback(std::move(outcome));
                    return;
                }
                prepared_.insert(name);
                if (!SendPrepared(name, sql, params, callback)) {
                    PgOutcome lost;
                    lost.failure = PgFailure::kConnection;
                    lost.error = "connection lost";
                    callback(std::move(lost));
                }
            });
    }
    std::vector<const char *> values = ParamPointers(params);
    return Dispatch(
        [&] {
            return PQsendQueryPrepared(conn_.get(), name.c_str(), static_cast<int>(values.size()),
                                       values.data(), nullptr, nullptr, 0);
        },
        [this, sql, params, callback = std::move(callback)](PgOutcome outcome) mutable {
            // 26000: prepared in this session, and gone from it: nothing
            // but a change of server connection (a transaction-mode pool)
            // takes it away mid-session. Nothing ran: send it unprepared.
            if (outcome.sqlstate == "26000") return BecomePooled(sql, params, callback);
            callback(std::move(outcome));
        });
}

void PgConnection::BecomePooled(const std::string &sql,
                                const std::vector<std::optional<std::string>> &params,
                                OutcomeCallback callback) {
    pooled_ = true;
    prepared_.clear();
    if (callbacks_.on_pooled) callbacks_.on_pooled();
    if (!Send(sql, params, callback)) {
        PgOutcome lost;
        lost.failure = PgFailure::kConnection;
        lost.error = "connection lost";
        callback(std::move(lost));
    }
}

bool PgConnection::Dispatch(const std::function<int()> &send, OutcomeCallback callback) {
    if (!idle()) return false;
    if (send() == 0) {
        std::string error = Trimmed(PQerrorMessage(conn_.get()));
        if (PQstatus(conn_.get()) == CONNECTION_BAD) {
            callback_ = std::move(callback);
            Lost(error);
        } else {
            PgOutcome outcome;
            outcome.failure = PgFailure::kSql;
            outcome.error = error;
            callback(std::move(outcome));
        }
        return true;
    }
    callback_ = std::move(callback);
    last_result_.reset();
    first_error_.clear();
    first_sqlstate_.clear();
    deadline_timer_ = loop_.After(options_.query_timeout, [this] {
        deadline_timer_ = 0;
        Lost(fmt::format("no answer within {}", FormatDuration(options_.query_timeout)));
    });
    Flush();
    return true;
}

void PgConnection::Flush() {
    int r = PQflush(conn_.get());
    if (r < 0) {
        Lost(Trimmed(PQerrorMessage(conn_.get())));
        return;
    }
    flushing_ = (r == 1);
    loop_.Modify(socket_, flushing_ ? (EPOLLIN | EPOLLOUT) : EPOLLIN);
}

void PgConnection::ReadResults() {
    while (!PQisBusy(conn_.get())) {
        PGresult *raw = PQgetResult(conn_.get());
        if (!raw) {
            PgOutcome outcome;
            if (!first_error_.empty()) {
                outcome.failure = PgFailure::kSql;
                outcome.error = first_error_;
                outcome.sqlstate = first_sqlstate_;
            }
            outcome.result = std::move(last_result_);
            Finish(std::move(outcome));
            return;
        }
        PgResult result(raw);
        ExecStatusType status = PQresultStatus(raw);
        if (status == PGRES_FATAL_ERROR || status == PGRES_BAD_RESPONSE ||
            status == PGRES_NONFATAL_ERROR) {
            if (first_error_.empty()) {
                const char *primary = PQresultErrorField(raw, PG_DIAG_MESSAGE_PRIMARY);
                first_error_ = primary ? primary : Trimmed(PQresultErrorMessage(raw));
                const char *state = PQresultErrorField(raw, PG_DIAG_SQLSTATE);
                first_sqlstate_ = state ? state : "";
            }
        }
        last_result_ = std::move(result);
    }
    if (PQstatus(conn_.get()) == CONNECTION_BAD) Lost(Trimmed(PQerrorMessage(conn_.get())));
}

void PgConnection::Finish(PgOutcome outcome) {
    loop_.Cancel(deadline_timer_);
    OutcomeCallback callback = std::move(callback_);
    callback_ = nullptr;
    bool bad = conn_ && PQstatus(conn_.get()) == CONNECTION_BAD;
    if (bad && outcome.failure != PgFailure::kNone) outcome.failure = PgFailure::kConnection;
    if (callback) callback(std::move(outcome));
    if (bad && conn_) Lost("connection lost");
}

void PgConnection::ConnectFailed(const std::string &why) {
    if (ever_ready_ || !callbacks_.on_fatal ||
        !UnhealableConnectError(why, PQconnectionNeedsPassword(conn_.get()) != 0))
        return Lost(why);
    // Not retried: wrong credentials or names stay wrong.
    Close();
    callbacks_.on_fatal(why);
}

void PgConnection::Lost(const std::string &why) {
    if (closed_) return;
    bool was_ready = ready_;
    loop_.Cancel(deadline_timer_);
    if (socket_ >= 0) loop_.Unwatch(socket_);
    socket_ = -1;
    conn_.reset();
    ready_ = connecting_ = flushing_ = false;
    last_result_.reset();
    OutcomeCallback callback = std::move(callback_);
    callback_ = nullptr;
    auto delay = backoff_.Next();
    // While the database stays down, say so once a minute, not per attempt.
    TimePoint now = EventLoop::Now();
    ++failures_;
    if (was_ready || failures_ == 1 || now - last_failure_log_ >= kRepeatFailureLog) {
        last_failure_log_ = now;
        Log(LogLevel::kWarn, was_ready ? "database connection lost" : "database connection failed",
            {{"conn", options_.role},
             {"error", why},
             {"attempts", std::to_string(failures_)},
             {"retry_in", FormatDuration(delay)}});
    } else {
        Log(LogLevel::kDebug, "database connection failed",
            {{"conn", options_.role},
             {"error", why},
             {"attempts", std::to_string(failures_)},
             {"retry_in", FormatDuration(delay)}});
    }
    loop_.Cancel(retry_timer_);
    retry_timer_ = loop_.After(delay, [this] {
        retry_timer_ = 0;
        BeginConnect();
    });
    if (callback) {
        PgOutcome outcome;
        outcome.failure = PgFailure::kConnection;
        outcome.error = why;
        callback(std::move(outcome));
    }
    if (was_ready && callbacks_.on_lost) callbacks_.on_lost();
}

}  // namespace jobq
