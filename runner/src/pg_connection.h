// One libpq connection driven by the event loop, reconnecting by itself.
//
// Vocabulary: the connection is *ready* once the asynchronous connect
// finished, and *idle* when ready with no statement in flight (one at a time:
// the runner batches, so it never needs more). A statement's *outcome* is its
// last PGresult, or a failure: kSql (the server answered with an error; the
// connection is fine) or kConnection (the connection died with the statement
// in flight, so whether it committed is unknown). On loss the connection
// reconnects after a jittered exponential backoff and calls on_ready again;
// callers re-issue what they still need (LISTEN, unacknowledged settles).
// A connect failure that retrying cannot heal (bad credentials, no such
// database, an invalid option) before the connection was ever ready is
// *fatal*: reported once through on_fatal, and no reconnect follows.
//
// The libpq protocol is followed exactly: PQflush until it returns 0 (with
// EPOLLOUT armed while it returns 1), PQconsumeInput on every readable event,
// PQnotifies drained each time, PQgetResult while !PQisBusy until NULL, and
// the socket re-registered on every connect step (PQsocket can change).
#pragma once

#include <libpq-fe.h>

#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "backoff.h"
#include "duration.h"
#include "event_loop.h"

namespace jobq {

struct PgResultDeleter {
    void operator()(PGresult *r) const { PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, PgResultDeleter>;

struct PgConnDeleter {
    void operator()(PGconn *c) const { PQfinish(c); }
};
using PgConn = std::unique_ptr<PGconn, PgConnDeleter>;

enum class PgFailure { kNone, kSql, kConnection };

struct PgOutcome {
    PgResult result;
    PgFailure failure = PgFailure::kNone;
    std::string error;
    std::string sqlstate;  // of a kSql failure
};

// SQLSTATE classes after which the same statement may well succeed
// (connection, transaction rollback, resources, operator intervention,
// object not in prerequisite state).
bool TransientSqlState(const std::string &sqlstate);

// Whether a failed connect's message (libpq's, with the server's FATAL) names
// a failure that no retry heals: authentication, a missing database or role,
// no CONNECT privilege. Server messages are matched in English (lc_messages
// C or en): a server in another language has these retried like the rest.
// needs_password: PQconnectionNeedsPassword.
bool UnhealableConnectError(const std::string &message, bool needs_password);

class PgConnection {
  public:
    struct Options {
        std::string dsn;
        std::string role;  // "work", "settle" or "listen", for logs
        Millis connect_timeout{10'000};
        Millis query_timeout{30'000};
        Millis reconnect_min{100};
        Millis reconnect_max{10'000};
        // false: SendPrepared sends unprepared (a transaction-mode pool).
        bool prepare = true;
    };
    struct Callbacks {
        std::function<void()> on_ready;
        std::function<void()> on_lost;
        std::function<void(const std::string &channel, const std::string &payload)> on_notify;
        // A fatal connect failure (see above); without it, those retry too.
        std::function<void(const std::string &why)> on_fatal;
        // A prepared statement was lost between two statements of one
        // session (or "already exists" in a session that never prepared
        // it): the server connection changes under us, as behind a
        // transaction-mode pool. SendPrepared sends unprepared from then on
        // (the failed call is re-sent unprepared, nothing lost); called once.
        std::function<void()> on_pooled;
    };
    using OutcomeCallback = std::function<void(PgOutcome)>;

    PgConnection(EventLoop &loop, Options options, Callbacks callbacks);
    ~PgConnection();
    PgConnection(const PgConnection &) = delete;
    PgConnection &operator=(const PgConnection &) = delete;

    void Start();
    // Stops reconnecting and closes the connection (shutdown).
    void Close();

    bool ready() const { return ready_; }
    bool idle() const { return ready_ && !callback_; }
    int reconnects() const { return reconnects_; }

    // Sends one statement with text parameters; requires idle().
    bool Send(const std::string &sql, const std::vector<std::optional<std::string>> &params,
              OutcomeCallback callback);
    // The same for a statement sent often: prepared under `name` on first
    // use on each connection (one extra round trip), then only bound and
    // executed, so the server neither parses nor plans it again. Unprepared
    // (as Send) without Options::prepare or once on_pooled was called.
    bool SendPrepared(const std::string &name, const std::string &sql,
                      const std::vector<std::optional<std::string>> &params,
                      OutcomeCallback callback);

  private:
    // on_pooled, then `callback` gets the outcome of the unprepared statement.
    void BecomePooled(const std::string &sql, const std::vector<std::optional<std::string>> &params,
                      OutcomeCallback callback);
    // Starts one libpq send (send() returns its result) and awaits the outcome.
    bool Dispatch(const std::function<int()> &send, OutcomeCallback callback);
    void BeginConnect();
    void ConnectStep();
    void OnSocket(uint32_t events);
    void Flush();
    void ReadResults();
    void DrainNotifies();
    void Lost(const std::string &why);
    // A connect failed: fatal (see above) or Lost.
    void ConnectFailed(const std::string &why);
    void Finish(PgOutcome outcome);
    void WatchSocket(uint32_t events);

    EventLoop &loop_;
    Options options_;
    Callbacks callbacks_;
    Backoff backoff_;
    PgConn conn_;
    int socket_ = -1;
    bool connecting_ = false;
    bool ready_ = false;
    bool closed_ = false;
    bool flushing_ = false;
    int reconnects_ = 0;
    bool ever_ready_ = false;
    int failures_ = 0;  // connect attempts failed in a row (or losses)
    TimePoint last_failure_log_;
    EventLoop::TimerId retry_timer_ = 0;
    EventLoop::TimerId deadline_timer_ = 0;
    OutcomeCallback callback_;
    std::set<std::string> prepared_;  // statement names prepared on this connection
    bool pooled_ = false;             // on_pooled was called: never prepare again
    PgResult last_result_;
    std::string first_error_;
    std::string first_sqlstate_;
};

}  // namespace jobq
