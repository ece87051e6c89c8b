// The runner's state machine: start-up, shutdown, claims, handlers,
// fencing, and what settle answers mean for the jobs (see runner.h for the
// vocabulary; sending the settles is the Settler's, settler.h).
#include "runner.h"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

#include "handlers/noop.h"
#include "json_text.h"
#include "log.h"

namespace jobq {
namespace {

constexpr Millis kMaintainEvery{100};
// Lease deadlines are checked every kMaintainEvery, so act that much early:
// a handler is then killed before its deadline (itself never later than the
// database's expiry) instead of up to one check after it, when the job may
// already be rescued; and none starts that the next check would kill.
constexpr Millis kFenceMargin = kMaintainEvery;
constexpr Millis kFlushBudget{10'000};  // after the grace period, to hand jobs back
constexpr Millis kClaimErrorPause{5'000};
// Claims that failed in a row (server errors) before /healthz says so.
constexpr int kClaimFailuresUnhealthy = 3;

const char *OutcomeName(OutcomeKind kind) {
    switch (kind) {
        case OutcomeKind::kComplete:
            return "complete";
        case OutcomeKind::kRetry:
            return "retry";
        case OutcomeKind::kFail:
            return "fail";
        case OutcomeKind::kDiscard:
            return "discard";
        case OutcomeKind::kSleep:
            return "sleep";
        case OutcomeKind::kRelease:
            return "release";
    }
    return "?";
}

}  // namespace

Runner::Runner(Config config) : config_(std::move(config)) {
    queues_.reserve(config_.queues.size());
    for (const QueueConfig &q : config_.queues) {
        QueueState state;
        state.config = &q;
        queues_.push_back(state);
        metrics_.queue(q.name);
    }
}

Runner::~Runner() {
    jobs_.clear();  // kills any handler still running
    graveyard_.clear();
    pools_.clear();  // after every execution that points into them
    curl_.clear();   // after every transfer is gone
}

void Runner::SetUpSignals() {
    sigset_t mask;
    sigemptyset(&mask);
    for (int sig : {SIGTERM, SIGINT, SIGCHLD, SIGHUP}) sigaddset(&mask, sig);
    if (sigprocmask(SIG_BLOCK, &mask, nullptr) != 0) throw std::runtime_error("sigprocmask failed");
    signal(SIGPIPE, SIG_IGN);
    signal_fd_.Reset(signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC));
    if (!signal_fd_.valid())
        throw std::runtime_error(std::string("signalfd: ") + std::strerror(errno));
    loop_.Watch(signal_fd_.get(), EPOLLIN, [this](uint32_t) { OnSignal(); });
}

void Runner::OnSignal() {
    signalfd_siginfo info;
    while (read(signal_fd_.get(), &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
        switch (info.ssi_signo) {
            case SIGCHLD:
                reaper_.ReapAll();
                break;
            case SIGHUP:
                Log(LogLevel::kWarn, "SIGHUP ignored: restart the runner to change its config");
                break;
            case SIGTERM:
            case SIGINT:
                if (!draining_) {
                    BeginDrain();
                } else {
                    Log(LogLevel::kWarn, "second signal: exiting at once",
                        {{"running", std::to_string(jobs_.size())}});
                    jobs_.clear();  // SIGKILL to every handler's process group
                    exit_code_ = 1;
                    loop_.Stop();
                    return;
                }
                break;
            default:
                break;
        }
    }
}

int Runner::Run() {
    SetUpSignals();
    int http_transfers = 0;
    for (const QueueConfig &q : config_.queues)
        if (q.handler == HandlerKind::kHttp) http_transfers += q.concurrency;
    for (int i = 0; http_transfers > 0 && i < CurlShardCount(http_transfers); ++i)
        curl_.push_back(std::make_unique<CurlMulti>(loop_));
    std::string worker = config_.worker;
    if (worker.empty()) {
        char host[256] = "unknown";
        gethostname(host, sizeof host - 1);
        worker = fmt::format("{}:{}", host, getpid());
        config_.worker = worker;
    }
    if (!config_.listen.empty()) {
        std::string host;
        int port;
        ParseListen("http.listen", config_.listen, &host, &port);
        http_server_ = std::make_unique<MetricsServer>(
            loop_, [this](const std::string &path) { return Route(path); });
        http_server_->Listen(host, port);
    }

    for (QueueState &q : queues_) {
        if (q.config->handler != HandlerKind::kWorker) continue;
        QueueState *qs = &q;
        pools_.push_back(std::make_unique<WorkerPool>(
            loop_, reaper_, *q.config,
            WorkerPool::Events{[this](int64_t id, std::optional<std::string> progress,
                                      std::optional<std::string> state) {
                                   OnProgress(id, std::move(progress), std::move(state));
                               },
                               [qs] { qs->want_claim = true; }}));
        q.pool = pools_.back().get();
        q.pool->Start();
    }

    PgConnection::Options work_options{config_.dsn,           "work",
                                       Millis(10'000),        config_.query_timeout,
                                       config_.reconnect_min, config_.reconnect_max};
    PgConnection::Options settle_options = work_options;
    settle_options.role = "settle";
    work_options.prepare = config_.pool_mode == PoolMode::kSession;
    PgConnection::Options listen_options = work_options;
    listen_options.role = "listen";
    if (!config_.listen_dsn.empty()) listen_options.dsn = config_.listen_dsn;
    auto fatal = [this](const char *role) {
        return [this, role](const std::string &why) {
            Fatal(fmt::format("cannot connect ({} connection); not retrying", role), why);
        };
    };
    PgConnection::Callbacks work_callbacks;
    work_callbacks.on_ready = [this] {
        SendStartupCheck();
        WantAll();
    };
    work_callbacks.on_fatal = fatal("work");
    work_callbacks.on_pooled = [this] { OnPooled(); };
    work_ = std::make_unique<PgConnection>(loop_, work_options, std::move(work_callbacks));
    // Settles whose outcome a lost connection hid are back in pending_ and
    // go out at the next tick; nothing else to redo on reconnect.
    settle_ = std::make_unique<PgConnection>(
        loop_, settle_options, PgConnection::Callbacks{nullptr, nullptr, nullptr, fatal("settle")});
    settler_ = std::make_unique<Settler>(
        *settle_, Settler::Callbacks{
                      [this](const HeartbeatItem &h) { return HeartbeatWanted(h); },
                      [this](const SettleBatch &batch, const SettleAcks &acks, TimePoint sent) {
                          OnSettleAnswered(batch, acks, sent);
                      },
                      [this](const SettleBatch &batch, const PgOutcome &outcome, bool will_resend) {
                          OnSettleFailed(batch, outcome, will_resend);
                      }});
    bool listen = config_.pool_mode == PoolMode::kSession || !config_.listen_dsn.empty();
    if (listen)
        listen_ = std::make_unique<PgConnection>(
            loop_, listen_options,
            PgConnection::Callbacks{
                [this] {
                    listen_->Send("LISTEN jobq_wakeup", {}, [this](PgOutcome o) {
                        if (o.failure == PgFailure::kSql)
                            Log(LogLevel::kError, "LISTEN failed", {{"error", o.error}});
                        if (o.failure == PgFailure::kConnection || !listen_->idle()) return;
                        listen_->Send("LISTEN jobq_cancel", {}, [](PgOutcome o2) {
                            if (o2.failure == PgFailure::kSql)
                                Log(LogLevel::kError, "LISTEN failed", {{"error", o2.error}});
                        });
                    });
                    // Notifications sent while we were away are lost: look now.
                    WantAll();
                },
                nullptr,
                [this](const std::string &channel, const std::string &payload) {
                    if (channel == "jobq_cancel") return OnCancelled(payload);
                    if (channel != "jobq_wakeup") return;
                    for (QueueState &q : queues_) {
                        if (payload.empty() || q.config->name == payload) q.want_claim = true;
                    }
                },
                fatal("listen")});

    loop_.AddTickHook([this] { Tick(); });
    std::function<void()> poll = [this, &poll] {
        WantAll();
        loop_.After(config_.poll_interval, poll);
    };
    loop_.After(config_.poll_interval, poll);
    std::function<void()> maintain = [this, &maintain] {
        Maintain();
        loop_.After(kMaintainEvery, maintain);
    };
    loop_.After(kMaintainEvery, maintain);

    std::string start_line = "jobq-runner: running, Ctrl+C to stop\n";
    ssize_t ignored = write(STDERR_FILENO, start_line.data(), start_line.size());
    (void)ignored;
    work_->Start();
    settle_->Start();
    if (listen_) {
        listen_->Start();
    } else {
        Log(LogLevel::kWarn,
            "wake-ups off: pool_mode is \"transaction\" and no listen_dsn is set; claims poll",
            {{"poll_interval", FormatDuration(config_.poll_interval)}});
    }
    Log(LogLevel::kInfo, "config",
        {{"worker", worker},
         {"queues", std::to_string(queues_.size())},
         {"listen", http_server_
                        ? fmt::format("{}:{}", config_.listen.substr(0, config_.listen.rfind(':')),
                                      http_server_->port())
                        : "off"}});
    loop_.Run();
    jobs_.clear();
    if (listen_) listen_->Close();
    settle_->Close();
    work_->Close();
    return exit_code_;
}

void Runner::Fatal(const std::string &what, const std::string &error) {
    if (exit_code_ == 2) return;  // the first says it
    Log(LogLevel::kError, what, {{"error", error}});
    exit_code_ = 2;
    loop_.Stop();
}

void Runner::SendStartupCheck() {
    if (checked_ || check_in_flight_ || !work_->idle()) return;
    check_in_flight_ = true;
    Statement st = BuildStartupCheck();
    work_->Send(st.sql, st.params, [this](PgOutcome outcome) {
        check_in_flight_ = false;
        if (outcome.failure == PgFailure::kConnection) return;  // again on reconnect
        if (outcome.failure == PgFailure::kSql) {
            if (TransientSqlState(outcome.sqlstate)) {
                loop_.After(kClaimErrorPause, [this] { SendStartupCheck(); });
                return;
            }
            Fatal("start-up check failed; not retrying", outcome.error);
            return;
        }
        StartupCheck check = ParseStartupCheck(outcome.result.get());
        std::string problem = check.Problem();
        if (!problem.empty()) {
            Fatal("cannot work queues; not retrying", problem);
            return;
        }
        checked_ = true;
    });
}

void Runner::OnPooled() {
    bool listen_too = listen_ && config_.listen_dsn.empty();
    Log(LogLevel::kWarn,
        listen_too ? "the database connection is pooled per transaction (a prepared statement "
                     "vanished): claims unprepared, wake-ups off, claims poll; set [database] "
                     "pool_mode = \"transaction\" and listen_dsn"
                   : "the database connection is pooled per transaction (a prepared statement "
                     "vanished): claims unprepared; set [database] pool_mode = \"transaction\"",
        {{"poll_interval", FormatDuration(config_.poll_interval)}});
    // LISTEN through such a pool hears nothing once the server connection
    // moves on: stop pretending.
    if (listen_too) listen_->Close();
}

void Runner::WantAll() {
    for (QueueState &q : queues_) q.want_claim = true;
}

HttpReply Runner::Route(const std::string &path) {
    HttpReply reply;
    if (path == "/metrics") {
        reply.content_type = "text/plain; version=0.0.4; charset=utf-8";
        reply.body =
            metrics_.Render(static_cast<uint64_t>(work_->reconnects() + settle_->reconnects() +
                                                  (listen_ ? listen_->reconnects() : 0)),
                            DatabaseUp());
    } else if (path == "/healthz") {
        if (draining_) {
            reply.status = 503;
            reply.body = "draining\n";
        } else if (!DatabaseUp()) {
            reply.status = 503;
            reply.body = "database unavailable\n";
        } else if (claim_failures_ >= kClaimFailuresUnhealthy) {
            reply.status = 503;
            reply.body = fmt::format("claims failing: {}\n", last_claim_error_);
        } else {
            reply.body = "ok\n";
        }
    } else {
        reply.status = 404;
        reply.body = "not found\n";
    }
    return reply;
}

void Runner::BeginDrain() {
    draining_ = true;
    size_t running = 0;
    for (auto &[id, job] : jobs_) running += job.execution ? 1 : 0;
    Log(LogLevel::kNotice, "shutting down: no more claims",
        {{"running", std::to_string(running)}, {"grace", FormatDuration(config_.grace_period)}});
    grace_timer_ = loop_.After(config_.grace_period, [this] {
        grace_timer_ = 0;
        OnGraceExpired();
    });
}

void Runner::OnGraceExpired() {
    grace_over_ = true;
    for (auto &[id, job] : jobs_) {
        if (!job.execution) continue;
        job.execution.reset();  // kills the handler
        job.queue->running--;
        metrics_.queue(job.queue->config->name).running--;
        MarkSettling(job);
        settler_->pending().releases.push_back(ReleaseItem{id, job.claimed.token});
        Log(LogLevel::kInfo, "job stopped at shutdown; releasing", {{"job", std::to_string(id)}});
    }
    flush_timer_ = loop_.After(kFlushBudget, [this] {
        flush_timer_ = 0;
        Log(LogLevel::kError,
            "could not settle every job before exiting; they return to the queue after their lease",
            {{"unsettled", std::to_string(jobs_.size())}});
        exit_code_ = 1;
        loop_.Stop();
    });
}

void Runner::Tick() {
    graveyard_.clear();
    SendNext();
    // A claim still in flight would come back with jobs to release, and a
    // settle in flight with jobs to forget: wait for both connections.
    bool quiet = (work_->idle() || !work_->ready()) && (settle_->idle() || !settle_->ready());
    if (draining_ && jobs_.empty() && settler_->empty() && quiet && WorkersStopped()) {
        Log(LogLevel::kNotice, "shut down cleanly");
        loop_.Stop();
    }
}

void Runner::SendNext() {
    // Each on its own backend: the database settles batch n while it claims
    // batch n+1, instead of one backend doing both in turn.
    settler_->SendIfReady();
    if (work_->idle() && !draining_) MaybeClaim();
}

bool Runner::WorkersStopped() {
    if (!workers_stopping_) {
        workers_stopping_ = true;
        for (auto &pool : pools_) pool->Shutdown();
    }
    for (auto &pool : pools_)
        if (!pool->Stopped()) return false;
    return true;
}

void Runner::OnCancelled(const std::string &payload) {
    char *end = nullptr;
    long long id = std::strtoll(payload.c_str(), &end, 10);
    if (payload.empty() || *end != '\0') return;
    auto it = jobs_.find(id);
    if (it == jobs_.end() || !it->second.execution) return;  // not ours, or ended already
    Log(LogLevel::kNotice, "job cancelled in the database; handler stopped",
        {{"job", std::to_string(id)}, {"queue", it->second.queue->config->name}});
    ++metrics_.queue(it->second.queue->config->name).lost;
    Forget(it);  // stops the handler; the job is finished already, nothing to settle
}

void Runner::OnProgress(int64_t id, std::optional<std::string> progress,
                        std::optional<std::string> state) {
    auto it = jobs_.find(id);
    if (it == jobs_.end() || !it->second.execution) return;
    settler_->pending().progress.push_back(
        ProgressItem{id, it->second.claimed.token, std::move(progress), std::move(state)});
}

void Runner::StopJob(Job &job, const char *why) {
    int64_t id = job.claimed.id;
    std::string queue = job.queue->config->name;
    ++metrics_.queue(queue).lost;
    Log(LogLevel::kWarn, why, {{"job", std::to_string(id)}, {"queue", queue}});
    auto it = jobs_.find(id);
    if (it != jobs_.end()) Forget(it);  // kills the handler, if still running
}

void Runner::MarkSettling(Job &job) {
    if (job.settling) return;  // counted once, however often re-sent
    job.settling = true;
    job.queue->unsettled++;
}

void Runner::EraseJob(int64_t id, int64_t token) {
    auto it = jobs_.find(id);
    if (it != jobs_.end() && it->second.claimed.token == token) Forget(it);
}

void Runner::Forget(std::unordered_map<int64_t, Job>::iterator it) {
    Job &job = it->second;
    if (job.execution) {
        job.queue->running--;
        metrics_.queue(job.queue->config->name).running--;
    }
    if (job.settling) job.queue->unsettled--;
    jobs_.erase(it);
}

bool Runner::DatabaseUp() const { return work_->ready() && settle_->ready(); }

Millis Runner::HeartbeatInterval(const Job &job) const {
    if (job.queue->config->heartbeat) return *job.queue->config->heartbeat;
    return std::max(Millis(100), job.lease_length / 3);
}

bool Runner::MaybeClaim() {
    // Jobs claimed now could neither be settled nor have their leases
    // extended: wait for the settle connection (wants are kept).
    if (!settle_->ready() || !checked_) return false;
    TimePoint now = EventLoop::Now();
    std::vector<ClaimRequest> requests;
    for (QueueState &q : queues_) {
        // Handlers are limited to concurrency. Unsettled jobs are allowed one
        // concurrency's worth on top, so the next claim goes out while the
        // last batch is settled; beyond that, claims wait for the settles
        // instead of piling up finished jobs whose leases run out.
        int slots = q.config->Slots();
        int capacity = slots - q.running - q.starting - std::max(0, q.unsettled - slots);
        // Worker queues: only what live processes can take now.
        if (q.pool) capacity = std::min(capacity, q.pool->Slots() - q.starting);
        if (!q.want_claim || capacity <= 0 || now < q.blocked_until) continue;
        ClaimRequest request{q.config->name, std::min(capacity, q.config->claim_batch),
                             q.config->lease};
        if (q.claim_alone) {
            requests.assign(1, request);
            break;
        }
        requests.push_back(request);
    }
    if (requests.empty()) return false;
    for (const ClaimRequest &r : requests) {
        for (QueueState &q : queues_) {
            if (q.config->name == r.queue) q.want_claim = false;
        }
    }
    Statement st = BuildClaimStatement(requests, config_.worker, config_.durable_claims);
    // Prepared: parsing and planning the claim's outer statement on every
    // call was about 0.2 ms of a one-job claim's 0.5.
    work_->SendPrepared("jobq_claim", st.sql, st.params,
                        [this, requests, now](PgOutcome outcome) mutable {
                            OnClaimed(std::move(requests), now, std::move(outcome));
                        });
    return true;
}

void Runner::OnClaimed(std::vector<ClaimRequest> requests, TimePoint sent, PgOutcome outcome) {
    TimePoint now = EventLoop::Now();
    metrics_.claim_round_trip().Observe(std::chrono::duration<double>(now - sent).count());
    auto want_again = [this, &requests] {
        for (const ClaimRequest &r : requests) {
            for (QueueState &q : queues_) {
                if (q.config->name == r.queue) q.want_claim = true;
            }
        }
    };
    if (outcome.failure == PgFailure::kSql) {
        ++claim_failures_;
        last_claim_error_ = outcome.error;
    } else if (outcome.failure == PgFailure::kNone) {
        claim_failures_ = 0;
    }
    if (outcome.failure != PgFailure::kNone) {
        // Connection loss: on_ready wants everything again. A claim whose
        // commit we did not see leaves its jobs to the lease rescue.
        want_again();
        if (outcome.failure == PgFailure::kSql) {
            for (const ClaimRequest &r : requests) {
                for (QueueState &q : queues_) {
                    if (q.config->name != r.queue) continue;
                    if (requests.size() > 1) {
                        q.claim_alone = true;  // find out which queue fails
                    } else {
                        q.blocked_until = now + kClaimErrorPause;
                        Log(LogLevel::kError, "claim failed",
                            {{"queue", r.queue},
                             {"error", outcome.error},
                             {"sqlstate", outcome.sqlstate},
                             {"retry_in", FormatDuration(kClaimErrorPause)}});
                    }
                }
            }
        }
        return;
    }
    if (requests.size() == 1) {
        for (QueueState &q : queues_) {
            if (q.config->name == requests[0].queue) q.claim_alone = false;
        }
    }
    std::vector<ClaimedRow> claimed = ParseClaimResult(outcome.result.get());
    Log(LogLevel::kDebug, "claimed",
        {{"jobs", std::to_string(claimed.size())},
         {"round_trip",
          fmt::format("{:.3f}s", std::chrono::duration<double>(now - sent).count())}});
    std::unordered_map<std::string, int> got;
    std::vector<std::pair<int64_t, QueueState *>> to_start;
    to_start.reserve(claimed.size());
    for (ClaimedRow &row : claimed) {
        ClaimedJob &c = row.job;
        double remaining = row.lease_left_seconds;
        QueueState *queue = nullptr;
        for (QueueState &q : queues_) {
            if (q.config->name == c.queue) queue = &q;
        }
        if (!queue) continue;  // cannot happen: we named the queues
        ++got[c.queue];
        ++metrics_.queue(c.queue).claimed;
        Job job;
        job.claimed = std::move(c);
        job.queue = queue;
        job.lease_length =
            std::chrono::duration_cast<Millis>(std::chrono::duration<double>(remaining));
        job.lease_deadline = sent + std::chrono::duration_cast<SteadyClock::duration>(
                                        std::chrono::duration<double>(remaining));
        int64_t id = job.claimed.id;
        auto old = jobs_.find(id);
        if (old != jobs_.end()) {
            // An earlier claim of ours lost its lease and the job came back
            // to us: the new claim wins; the old one's settles will be
            // refused by its stale token and must not touch the new entry.
            Forget(old);
        }
        auto it = jobs_.emplace(id, std::move(job)).first;
        if (draining_) {
            MarkSettling(it->second);
            settler_->pending().releases.push_back(ReleaseItem{id, it->second.claimed.token});
            continue;
        }
        to_start.emplace_back(id, queue);
        queue->starting++;
    }
    for (const ClaimRequest &r : requests) {
        if (got[r.queue] >= r.max_jobs) {
            for (QueueState &q : queues_) {
                if (q.config->name == r.queue) q.want_claim = true;
            }
        }
    }
    // The next claim goes out before the handlers start (forks, transfers
    // and their bookkeeping take a while), so the database works on it
    // meanwhile; the jobs not yet started count against capacity.
    SendNext();
    for (auto [id, queue] : to_start) {
        queue->starting--;
        auto it = jobs_.find(id);
        if (it != jobs_.end()) StartHandler(it->second);  // always: nothing ran in between
    }
    SendNext();  // releases of jobs whose lease ran out before they started
}

void Runner::StartHandler(Job &job) {
    TimePoint now = EventLoop::Now();
    int64_t id = job.claimed.id;
    if (now + kFenceMargin >= job.lease_deadline) {
        // Never start a handler once the lease may belong to someone else.
        // The claim was answered late, so the database's lease (counted from
        // when the claim ran there) usually still holds: hand the job back
        // at once instead of leaving it to the rescue. The release names the
        // claim's token, so it is refused if the job has moved on.
        ++metrics_.queue(job.queue->config->name).lost;
        Log(LogLevel::kWarn, "lease expired before the handler could start; not started, released",
            {{"job", std::to_string(id)}, {"queue", job.queue->config->name}});
        MarkSettling(job);
        settler_->pending().releases.push_back(ReleaseItem{id, job.claimed.token});
        return;
    }
    job.started = now;
    job.next_heartbeat = now + HeartbeatInterval(job);
    const QueueConfig &qc = *job.queue->config;
    job.queue->running++;
    metrics_.queue(qc.name).running++;
    DoneCallback done = [this, id](Outcome o) { OnHandlerDone(id, std::move(o)); };
    if (Verbose())
        Log(LogLevel::kInfo, "job started",
            {{"job", std::to_string(id)},
             {"queue", qc.name},
             {"attempt", std::to_string(job.claimed.attempt)}});
    switch (qc.handler) {
        case HandlerKind::kNoop:
            job.execution = StartNoop(loop_, std::move(done));
            break;
        case HandlerKind::kExec:
            job.execution = StartExec(
                loop_, reaper_, qc, job.claimed, std::move(done),
                [this, id](std::optional<std::string> progress, std::optional<std::string> state) {
                    OnProgress(id, std::move(progress), std::move(state));
                });
            break;
        case HandlerKind::kWorker:
            job.execution = job.queue->pool->StartJob(job.claimed, std::move(done));
            break;
        case HandlerKind::kHttp:
            job.execution = StartHttp(loop_, *curl_[static_cast<size_t>(id) % curl_.size()], qc,
                                      job.claimed, std::move(done));
            break;
    }
}

void Runner::OnHandlerDone(int64_t id, Outcome outcome) {
    auto it = jobs_.find(id);
    if (it == jobs_.end() || !it->second.execution) return;
    Job &job = it->second;
    graveyard_.push_back(std::move(job.execution));  // we are inside its callback
    job.queue->running--;
    const std::string &queue = job.queue->config->name;
    QueueMetrics &m = metrics_.queue(queue);
    m.running--;
    double seconds = std::chrono::duration<double>(EventLoop::Now() - job.started).count();
    m.duration.Observe(seconds);
    if (outcome.kind == OutcomeKind::kComplete) {
        if (Verbose())
            Log(LogLevel::kInfo, "job finished",
                {{"job", std::to_string(id)},
                 {"queue", queue},
                 {"outcome", "complete"},
                 {"duration", fmt::format("{:.3f}s", seconds)}});
    } else {
        if (Verbose())
            Log(LogLevel::kInfo, "job finished",
                {{"job", std::to_string(id)},
                 {"queue", queue},
                 {"outcome", OutcomeName(outcome.kind)},
                 {"duration", fmt::format("{:.3f}s", seconds)},
                 {"error", outcome.error}});
    }
    MarkSettling(job);
    if (outcome.kind == OutcomeKind::kComplete) {
        settler_->pending().completes.push_back(
            CompleteItem{id, job.claimed.token, std::move(outcome.result)});
    } else if (outcome.kind == OutcomeKind::kSleep) {
        settler_->pending().sleeps.push_back(
            SleepItem{id, job.claimed.token, outcome.sleep_for, std::move(outcome.state)});
    } else if (outcome.kind == OutcomeKind::kRelease) {
        Log(LogLevel::kWarn, "job not started; released",
            {{"job", std::to_string(id)}, {"queue", queue}, {"reason", outcome.error}});
        settler_->pending().releases.push_back(ReleaseItem{id, job.claimed.token});
    } else {
        std::string error = SanitizeText(outcome.error);
        if (error.empty()) error = "failed";
        settler_->pending().fails.push_back(FailItem{id, job.claimed.token, std::move(error),
                                                     outcome.retry_in,
                                                     outcome.kind == OutcomeKind::kDiscard});
    }
    // Capacity freed: if the last claim came back full there may be more.
}

void Runner::Maintain() {
    TimePoint now = EventLoop::Now();
    std::vector<int64_t> fenced;
    for (auto &[id, job] : jobs_) {
        if (!job.execution) continue;
        if (now + kFenceMargin >= job.lease_deadline) {
            fenced.push_back(id);
        } else if (now >= job.next_heartbeat && !job.heartbeat_pending) {
            job.heartbeat_pending = true;
            settler_->pending().heartbeats.push_back(
                HeartbeatItem{id, job.claimed.token, job.queue->config->lease});
        }
    }
    for (int64_t id : fenced) {
        auto it = jobs_.find(id);
        if (it != jobs_.end())
            StopJob(it->second, "lease could not be extended in time; handler stopped (fenced)");
    }
}

bool Runner::HeartbeatWanted(const HeartbeatItem &h) const {
    auto it = jobs_.find(h.id);
    return it != jobs_.end() && it->second.claimed.token == h.token && it->second.execution;
}

void Runner::OnSettleFailed(const SettleBatch &batch, const PgOutcome &outcome, bool will_resend) {
    for (const HeartbeatItem &h : batch.heartbeats) {
        auto it = jobs_.find(h.id);
        if (it != jobs_.end() && it->second.claimed.token == h.token)
            it->second.heartbeat_pending = false;
    }
    if (will_resend) return;
    // Refused alone (the Settler isolated it): only this job is affected.
    auto report = [this, &outcome](const char *settle, int64_t id, int64_t token,
                                   const char *consequence) {
        auto it = jobs_.find(id);
        std::string queue = it != jobs_.end() && it->second.claimed.token == token
                                ? it->second.queue->config->name
                                : "";
        Log(LogLevel::kError, fmt::format("{} failed; {}", settle, consequence),
            {{"job", std::to_string(id)},
             {"queue", queue},
             {"error", outcome.error},
             {"sqlstate", outcome.sqlstate}});
    };
    const char *returns = "the job returns to the queue after its lease";
    for (auto &c : batch.completes) {
        report("completion", c.id, c.token, returns);
        EraseJob(c.id, c.token);
    }
    for (auto &f : batch.fails) {
        report("failure", f.id, f.token, returns);
        EraseJob(f.id, f.token);
    }
    for (auto &r : batch.releases) {
        report("release", r.id, r.token, returns);
        EraseJob(r.id, r.token);
    }
    for (auto &h : batch.heartbeats)
        report("heartbeat", h.id, h.token, "tried again at the next interval");
    for (auto &p : batch.progress) report("progress report", p.id, p.token, "the job runs on");
    for (auto &sl : batch.sleeps) {
        report("sleep", sl.id, sl.token, returns);
        EraseJob(sl.id, sl.token);
    }
}

void Runner::OnSettleAnswered(const SettleBatch &batch, const SettleAcks &acks, TimePoint sent) {
    Log(LogLevel::kDebug, "settled",
        {{"settles", std::to_string(batch.size())},
         {"round_trip",
          fmt::format("{:.3f}s", std::chrono::duration<double>(EventLoop::Now() - sent).count())}});
    // The queue of the claim a settle was for ("" if it is gone already).
    auto queue_of = [this](int64_t id, int64_t token) -> std::string {
        auto it = jobs_.find(id);
        if (it == jobs_.end() || it->second.claimed.token != token) return "";
        return it->second.queue->config->name;
    };
    QueueMetrics scratch;  // counts for claims we no longer know
    // A settle the database did not apply: a stale lease, or (complete,
    // fail_many) an error of this job alone, which the server isolates and
    // reports in a WARNING. Re-sent after a lost connection, the first send
    // may have been applied: the runner cannot tell which.
    auto refused = [](QueueMetrics &m, const char *what, bool resent, int64_t id,
                      const std::string &queue) {
        ++m.refused;
        std::string msg =
            resent ? fmt::format(
                         "{} not applied when re-sent after a lost connection: the first "
                         "send was applied, or the lease was lost",
                         what)
                   : fmt::format("{} not applied: the lease was no longer ours, or the "
                                 "server refused this job alone (see its warning)",
                                 what);
        Log(LogLevel::kWarn, msg, {{"job", std::to_string(id)}, {"queue", queue}});
    };
    for (const CompleteItem &c : batch.completes) {
        std::string queue = queue_of(c.id, c.token);
        QueueMetrics &m = queue.empty() ? scratch : metrics_.queue(queue);
        if (acks.completed.count(c.id)) {
            ++m.completed;
            if (Verbose())
                Log(LogLevel::kInfo, "job completed",
                    {{"job", std::to_string(c.id)}, {"queue", queue}});
        } else {
            refused(m, "completion", c.resent, c.id, queue);
        }
        EraseJob(c.id, c.token);
    }
    for (const FailItem &f : batch.fails) {
        std::string queue = queue_of(f.id, f.token);
        QueueMetrics &m = queue.empty() ? scratch : metrics_.queue(queue);
        auto it = acks.failed.find(f.id);
        if (it != acks.failed.end()) {
            ++m.failed;
            if (it->second == "dead")
                ++m.dead;
            else
                ++m.retried;
            if (Verbose())
                Log(LogLevel::kInfo, "job failed",
                    {{"job", std::to_string(f.id)},
                     {"queue", queue},
                     {"state", it->second},
                     {"error", f.error}});
        } else {
            refused(m, "failure", f.resent, f.id, queue);
        }
        EraseJob(f.id, f.token);
    }
    for (const ReleaseItem &r : batch.releases) {
        std::string queue = queue_of(r.id, r.token);
        if (acks.released.count(r.id) && !queue.empty()) ++metrics_.queue(queue).released;
        if (Verbose())
            Log(LogLevel::kInfo, "job released", {{"job", std::to_string(r.id)}, {"queue", queue}});
        EraseJob(r.id, r.token);
    }
    for (const SleepItem &sl : batch.sleeps) {
        std::string queue = queue_of(sl.id, sl.token);
        QueueMetrics &m = queue.empty() ? scratch : metrics_.queue(queue);
        if (acks.slept.count(sl.id)) {
            if (Verbose())
                Log(LogLevel::kInfo, "job sleeping",
                    {{"job", std::to_string(sl.id)},
                     {"queue", queue},
                     {"for", FormatDuration(sl.delay)}});
        } else {
            refused(m, "sleep", sl.resent, sl.id, queue);
        }
        EraseJob(sl.id, sl.token);
    }
    // A progress report not applied means the job is no longer ours; the
    // next heartbeat stops its handler. Nothing to do here.
    TimePoint now = EventLoop::Now();
    for (const HeartbeatItem &h : batch.heartbeats) {
        auto it = jobs_.find(h.id);
        if (it == jobs_.end() || it->second.claimed.token != h.token) continue;
        Job &job = it->second;
        job.heartbeat_pending = false;
        if (!job.execution) continue;  // ended meanwhile; its settle decides
        auto ack = acks.heartbeats.find(h.id);
        if (ack == acks.heartbeats.end()) {
            StopJob(
                job,
                "job no longer held (cancelled, rescued or settled elsewhere); handler stopped");
            continue;
        }
        job.lease_deadline = sent + std::chrono::duration_cast<SteadyClock::duration>(
                                        std::chrono::duration<double>(ack->second));
        job.next_heartbeat = now + HeartbeatInterval(job);
    }
}

}  // namespace jobq
