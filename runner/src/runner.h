// The runner: claims jobs, runs their handlers, settles them.
//
// Vocabulary:
//   work connection    claims, one statement at a time
//   settle connection  settles (complete, fail, release) and heartbeats, one
//                      batch at a time; a second backend, so the database
//                      settles one batch while it claims the next
//   listen connection  LISTEN jobq_wakeup; a notification (payload: queue
//                      name) is only a hint that a claim may find work;
//                      and LISTEN jobq_cancel (payload: job id): a job
//                      cancelled in SQL is stopped at once (the heartbeat,
//                      which finds the job gone, is the fallback);
//                      on listen_dsn if set; none behind a transaction-mode
//                      pool without one (claims poll)
//   pooled             the work connection's server connection changes
//                      between statements (a transaction-mode pool, set or
//                      detected): no prepared claims, no LISTEN through it
//   unsettled          a job whose handler has ended and whose settle is
//                      queued or in flight; still held by this runner
//   capacity           a queue's concurrency minus its running handlers, and
//                      minus its unsettled jobs beyond one concurrency's
//                      worth (back-pressure: claims wait for slow settles,
//                      and stop while the settle connection is down)
//   lease deadline     local steady-clock time by which the lease must have
//                      been extended; computed as (statement send time +
//                      remaining lease reported by the server), so it is
//                      never later than the database's own expiry
//   fencing            a handler still running at its lease deadline is
//                      killed, and none starts after it: once the lease may
//                      have passed to another runner, this one stops
//   draining           after SIGTERM/SIGINT: no more claims; running
//                      handlers get the grace period, then are stopped and
//                      their jobs released; a second signal exits at once
//   start-up check     before the first claim: the work connection's role
//                      must have jobq_worker, in a database with jobq
// Error policy: database trouble is never fatal (reconnect with backoff,
// settles kept and re-sent), except what no retry heals at start-up: bad
// credentials, a missing database, a role without jobq_worker (exit 2).
// Config and setup errors are fatal at start.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "config.h"
#include "event_loop.h"
#include "handlers/exec.h"
#include "handlers/http.h"
#include "handlers/worker.h"
#include "job.h"
#include "metrics.h"
#include "metrics_server.h"
#include "pg_connection.h"
#include "settler.h"
#include "sql_protocol.h"

namespace jobq {

class Runner {
  public:
    explicit Runner(Config config);
    ~Runner();
    // Runs until shut down; returns the process exit status.
    int Run();

  private:
    struct QueueState {
        const QueueConfig *config;
        WorkerPool *pool = nullptr;  // worker queues: their processes
        int running = 0;
        int starting = 0;  // claimed, handler about to start (within OnClaimed)
        int unsettled = 0;
        bool want_claim = true;  // a claim may find work (hint, poll, full batch)
        // A multi-queue claim failed: claim this queue alone next time, so
        // one broken queue (dropped, misnamed) cannot stop the others.
        bool claim_alone = false;
        TimePoint blocked_until;  // after a failed claim of this queue alone
    };
    struct Job {
        ClaimedJob claimed;
        QueueState *queue = nullptr;
        Millis lease_length{0};
        TimePoint lease_deadline;
        TimePoint next_heartbeat;
        bool heartbeat_pending = false;
        TimePoint started;
        std::unique_ptr<Execution> execution;  // null once the handler ended
        bool settling = false;                 // a settle is queued or in flight (unsettled)
    };

    void SetUpSignals();
    // Stops the runner with exit status 2: `what` and the error in one line.
    void Fatal(const std::string &what, const std::string &error);
    void SendStartupCheck();
    // The work connection turned out pooled per transaction (see above).
    void OnPooled();
    void OnSignal();
    void BeginDrain();
    void OnGraceExpired();
    void Tick();
    // Sends pending settles if the settle connection is free, and a claim
    // if the work connection is free.
    void SendNext();
    // What the database said of a settle batch (see settler.h).
    void OnSettleAnswered(const SettleBatch &batch, const SettleAcks &acks, TimePoint sent);
    void OnSettleFailed(const SettleBatch &batch, const PgOutcome &outcome, bool will_resend);
    bool HeartbeatWanted(const HeartbeatItem &heartbeat) const;
    // Sends a claim if a queue wants one and has capacity; true if sent.
    bool MaybeClaim();
    void OnClaimed(std::vector<ClaimRequest> requests, TimePoint sent, PgOutcome outcome);
    void StartHandler(Job &job);
    void OnHandlerDone(int64_t id, Outcome outcome);
    // A worker process reported progress and/or state for a running job.
    void OnProgress(int64_t id, std::optional<std::string> progress,
                    std::optional<std::string> state);
    // jobq_cancel: the job was cancelled in the database.
    void OnCancelled(const std::string &payload);
    // After a drain: worker processes are told to stop; true once none is left.
    bool WorkersStopped();
    void Maintain();
    void StopJob(Job &job, const char *why);
    // The job's settle is queued: it counts as unsettled until forgotten.
    void MarkSettling(Job &job);
    // Forgets a job only if it is still the claim with this token.
    void EraseJob(int64_t id, int64_t token);
    // Forgets a job, giving back what it counted against its queue.
    void Forget(std::unordered_map<int64_t, Job>::iterator it);
    void WantAll();
    HttpReply Route(const std::string &path);
    // Work and settle connections both up: without the first no job
    // starts, without the second none finishes (listen only speeds claims).
    bool DatabaseUp() const;
    Millis HeartbeatInterval(const Job &job) const;

    Config config_;
    EventLoop loop_;
    ChildReaper reaper_;
    // Declared before jobs_ and graveyard_, destroyed after them: executions
    // of worker jobs tell their pool when they go.
    std::vector<std::unique_ptr<WorkerPool>> pools_;
    bool workers_stopping_ = false;
    // Several multi handles (CurlShardCount), each with its own connection
    // cache, so libcurl's linear scans of a cache stay short with thousands
    // in flight. Jobs are spread by id; connection reuse works within each
    // shard.
    std::vector<std::unique_ptr<CurlMulti>> curl_;
    std::unique_ptr<PgConnection> work_;
    std::unique_ptr<PgConnection> settle_;
    std::unique_ptr<PgConnection> listen_;
    std::unique_ptr<Settler> settler_;  // on settle_
    std::unique_ptr<MetricsServer> http_server_;
    Metrics metrics_;
    std::vector<QueueState> queues_;
    std::unordered_map<int64_t, Job> jobs_;
    std::vector<std::unique_ptr<Execution>> graveyard_;  // ended executions, freed at tick end
    UniqueFd signal_fd_;
    bool checked_ = false;    // the start-up check passed
    int claim_failures_ = 0;  // claims refused by the server in a row (/healthz)
    std::string last_claim_error_;
    bool check_in_flight_ = false;
    bool draining_ = false;
    bool grace_over_ = false;
    int exit_code_ = 0;
    EventLoop::TimerId grace_timer_ = 0;
    EventLoop::TimerId flush_timer_ = 0;
};

}  // namespace jobq
