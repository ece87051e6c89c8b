// The runner's settle side: sending the pending settles and heartbeats as
// one batch on the settle connection, and applying what the database says
// of each (see runner.h for the vocabulary; the claim side is runner.cpp).
#include <algorithm>
#include <string>

#include <fmt/format.h>

#include "log.h"
#include "runner.h"

namespace jobq {
namespace {

// After a server-side error, so a persistent one is not retried in a loop.
constexpr Millis kSettleErrorPause{1'000};

// SQLSTATE classes after which the same statement may well succeed.
bool TransientSqlState(const std::string &state) {
    std::string cls = state.substr(0, 2);
    return cls == "08" || cls == "40" || cls == "53" || cls == "57" || cls == "55";
}

}  // namespace

void Runner::SendSettles() {
    SettleBatch batch = std::move(pending_);
    pending_ = SettleBatch{};
    // A heartbeat queued earlier in the tick may be for a job that has
    // ended since (its settle is in this batch, or it was stopped): drop it,
    // so one statement never both heartbeats and settles the same job.
    auto &hb = batch.heartbeats;
    hb.erase(std::remove_if(hb.begin(), hb.end(),
                            [this](const HeartbeatItem &h) {
                                auto it = jobs_.find(h.id);
                                return it == jobs_.end() || it->second.claimed.token != h.token ||
                                       !it->second.execution;
                            }),
             hb.end());
    if (batch.empty()) return;
    Statement st = BuildSettleStatement(batch);
    TimePoint sent = EventLoop::Now();
    settle_->Send(st.sql, st.params,
                  [this, batch = std::move(batch), sent](PgOutcome outcome) mutable {
                      OnSettled(std::move(batch), sent, std::move(outcome));
                  });
}

void Runner::OnSettled(SettleBatch batch, TimePoint sent, PgOutcome outcome) {
    if (outcome.failure != PgFailure::kNone) {
        bool retry =
            outcome.failure == PgFailure::kConnection || TransientSqlState(outcome.sqlstate);
        for (const HeartbeatItem &h : batch.heartbeats) {
            auto it = jobs_.find(h.id);
            if (it != jobs_.end() && it->second.claimed.token == h.token)
                it->second.heartbeat_pending = false;
        }
        if (retry) {
            // Outcome unknown or transient: settle again (idempotent per token).
            // After a server-side error wait a little, so a persistent one
            // (say a statement_timeout) is not retried in a tight loop.
            if (outcome.failure == PgFailure::kSql) {
                settle_paused_until_ = EventLoop::Now() + kSettleErrorPause;
                Log(LogLevel::kWarn, "settle failed; retrying",
                    {{"error", outcome.error},
                     {"sqlstate", outcome.sqlstate},
                     {"retry_in", FormatDuration(kSettleErrorPause)}});
            }
            // After a lost connection the first send may have been applied:
            // remember it, so a refusal of the re-send is not blamed on the
            // lease alone.
            bool unknown = outcome.failure == PgFailure::kConnection;
            for (auto &c : batch.completes) {
                c.resent |= unknown;
                pending_.completes.push_back(std::move(c));
            }
            for (auto &f : batch.fails) {
                f.resent |= unknown;
                pending_.fails.push_back(std::move(f));
            }
            for (auto &r : batch.releases) pending_.releases.push_back(r);
            return;
        }
        Log(LogLevel::kError, "settle failed; these jobs return to the queue after their lease",
            {{"error", outcome.error},
             {"sqlstate", outcome.sqlstate},
             {"jobs", std::to_string(batch.size())}});
        for (auto &c : batch.completes) EraseJob(c.id, c.token);
        for (auto &f : batch.fails) EraseJob(f.id, f.token);
        for (auto &r : batch.releases) EraseJob(r.id, r.token);
        return;
    }
    SettleAcks acks = ParseSettleResult(outcome.result.get());
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
    // A settle the database did not apply. Re-sent after a lost connection,
    // the first send may have been applied: the runner cannot tell which.
    auto refused = [](QueueMetrics &m, const char *what, bool resent, int64_t id,
                      const std::string &queue) {
        ++m.refused;
        std::string msg =
            resent ? fmt::format(
                         "{} not applied when re-sent after a lost connection: the first "
                         "send was applied, or the lease was lost",
                         what)
                   : fmt::format("{} refused: the lease was no longer ours", what);
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
