// Settler (see settler.h).
#include "settler.h"

#include <algorithm>
#include <string>

#include "log.h"

namespace jobq {
namespace {

// After a server-side error, so a persistent one is not retried in a loop.
constexpr Millis kSettleErrorPause{1'000};

}  // namespace

Settler::Settler(PgConnection &connection, Callbacks callbacks)
    : connection_(connection), callbacks_(std::move(callbacks)) {}

void Settler::SendIfReady() {
    if (!connection_.idle() || pending_.empty() || EventLoop::Now() < paused_until_) return;
    SettleBatch batch = std::move(pending_);
    pending_ = SettleBatch{};
    auto &hb = batch.heartbeats;
    hb.erase(
        std::remove_if(hb.begin(), hb.end(),
                       [this](const HeartbeatItem &h) { return !callbacks_.heartbeat_wanted(h); }),
        hb.end());
    if (batch.empty()) return;
    Statement st = BuildSettleStatement(batch);
    TimePoint sent = EventLoop::Now();
    connection_.Send(st.sql, st.params,
                     [this, batch = std::move(batch), sent](PgOutcome outcome) mutable {
                         OnOutcome(std::move(batch), sent, std::move(outcome));
                     });
}

void Settler::OnOutcome(SettleBatch batch, TimePoint sent, PgOutcome outcome) {
    if (outcome.failure == PgFailure::kNone) {
        SettleAcks acks = ParseSettleResult(outcome.result.get());
        callbacks_.on_answered(batch, acks, sent);
        return;
    }
    bool retry = outcome.failure == PgFailure::kConnection || TransientSqlState(outcome.sqlstate);
    if (!retry) {
        callbacks_.on_failed(batch, outcome, false);
        return;
    }
    // Outcome unknown or transient: settle again (idempotent per token).
    // After a server-side error wait a little, so a persistent one (say a
    // statement_timeout) is not retried in a tight loop.
    if (outcome.failure == PgFailure::kSql) {
        paused_until_ = EventLoop::Now() + kSettleErrorPause;
        Log(LogLevel::kWarn, "settle failed; retrying",
            {{"error", outcome.error},
             {"sqlstate", outcome.sqlstate},
             {"retry_in", FormatDuration(kSettleErrorPause)}});
    }
    // After a lost connection the first send may have been applied: remember
    // it, so a refusal of the re-send is not blamed on the lease alone.
    bool unknown = outcome.failure == PgFailure::kConnection;
    callbacks_.on_failed(batch, outcome, true);
    for (auto &c : batch.completes) {
        c.resent |= unknown;
        pending_.completes.push_back(std::move(c));
    }
    for (auto &f : batch.fails) {
        f.resent |= unknown;
        pending_.fails.push_back(std::move(f));
    }
    for (auto &r : batch.releases) pending_.releases.push_back(r);
}

}  // namespace jobq
