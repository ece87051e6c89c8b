// The runner's side of the worker protocol (docs/protocol.md): every SQL
// statement the runner sends to claim and settle jobs, and the parsers of
// their results. Each result column is named here once, in the statement
// and in its parser, so the two cannot drift apart.
//
// Vocabulary: a *claim* asks jobq.claim for up to max_jobs jobs of each
// queue; each returned row is a *claimed row* (the job and the lease time
// left). A *settle* is a complete, fail, heartbeat or release of one job
// under its lease token. Settles accumulate during a tick; the runner takes
// them as one *batch* and sends one statement (data-modifying functions
// evaluated in CTEs of one SELECT), so a tick costs one round trip however
// many jobs it touched. The *acks* say which settles the database applied; a
// settle missing from the acks was refused (stale token: the job is no
// longer ours).
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "duration.h"
#include "job.h"

namespace jobq {

struct CompleteItem {
    int64_t id;
    int64_t token;
    std::optional<std::string> result;
    bool resent = false;  // sent again after a connection died with it in flight
};

struct FailItem {
    int64_t id;
    int64_t token;
    std::string error;
    std::optional<Millis> retry_in;
    bool discard;
    bool resent = false;  // sent again after a connection died with it in flight
};

struct HeartbeatItem {
    int64_t id;
    int64_t token;
    std::optional<Millis> lease;
};

struct ReleaseItem {
    int64_t id;
    int64_t token;
};

// Progress and/or state a running job reported (JSON text each).
struct ProgressItem {
    int64_t id;
    int64_t token;
    std::optional<std::string> progress;
    std::optional<std::string> state;
};

// jobq.sleep: out of running for `delay`, state saved (none: keep).
struct SleepItem {
    int64_t id;
    int64_t token;
    Millis delay;
    std::optional<std::string> state;
    bool resent = false;  // sent again after a connection died with it in flight
};

struct SettleBatch {
    std::vector<CompleteItem> completes;
    std::vector<FailItem> fails;
    std::vector<HeartbeatItem> heartbeats;
    std::vector<ReleaseItem> releases;
    std::vector<ProgressItem> progress;
    std::vector<SleepItem> sleeps;
    bool empty() const {
        return completes.empty() && fails.empty() && heartbeats.empty() && releases.empty() &&
               progress.empty() && sleeps.empty();
    }
    size_t size() const {
        return completes.size() + fails.size() + heartbeats.size() + releases.size() +
               progress.size() + sleeps.size();
    }
};

struct SettleAcks {
    std::set<int64_t> completed;
    std::map<int64_t, std::string> failed;  // id -> new state (retryable | dead)
    std::map<int64_t, double> heartbeats;   // id -> seconds of lease left
    std::set<int64_t> released;
    std::set<int64_t> progressed;
    std::set<int64_t> slept;
};

struct Statement {
    std::string sql;
    std::vector<std::optional<std::string>> params;
};

// One statement settling the whole (non-empty) batch.
Statement BuildSettleStatement(const SettleBatch &batch);
SettleAcks ParseSettleResult(const PGresult *result);

// The claim statement: one jobq.claim per queue, one round trip.
struct ClaimRequest {
    std::string queue;
    int max_jobs;
    std::optional<Millis> lease;
};
Statement BuildClaimStatement(const std::vector<ClaimRequest> &requests, const std::string &worker,
                              bool durable = true);

// One row of the claim's result.
struct ClaimedRow {
    ClaimedJob job;
    double lease_left_seconds = 0;  // at the end of the claim, by the server's clock
};
std::vector<ClaimedRow> ParseClaimResult(const PGresult *result);

// The start-up check, on the first connection: can this role work queues?
struct StartupCheck {
    bool schema = false;       // the jobq schema exists (extension installed here)
    bool worker_role = false;  // the role jobq_worker exists
    bool member = false;       // current_user has jobq_worker's privileges
    // Empty when the runner can work; else one sentence saying what is wrong.
    std::string Problem() const;
    std::string user;  // current_user
};
Statement BuildStartupCheck();
StartupCheck ParseStartupCheck(const PGresult *result);

}  // namespace jobq
