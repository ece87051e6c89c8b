// Settler (see settler.h).
#include "settler.h"

#include <algorithm>
#include <iterator>
#include <string>

#include "log.h"

namespace jobq {
namespace {

// After a server-side error, so a persistent one is not retried in a loop.
constexpr Millis kSettleErrorPause{1'000};

// Moves the first `n` items of `from` to the end of `to`; returns how many.
template <typename T>
size_t MoveFirst(std::vector<T> &from, std::vector<T> &to, size_t n) {
    n = std::min(n, from.size());
    std::move(from.begin(), from.begin() + static_cast<std::ptrdiff_t>(n), std::back_inserter(to));
    from.erase(from.begin(), from.begin() + static_cast<std::ptrdiff_t>(n));
    return n;
}

}  // namespace

Settler::Settler(PgConnection &connection, Callbacks callbacks)
    : connection_(connection), callbacks_(std::move(callbacks)) {}

std::pair<SettleBatch, SettleBatch> SplitBatch(SettleBatch batch) {
    SettleBatch first;
    size_t n = batch.size() / 2;
    n -= MoveFirst(batch.completes, first.completes, n);
    n -= MoveFirst(batch.fails, first.fails, n);
    n -= MoveFirst(batch.heartbeats, first.heartbeats, n);
    n -= MoveFirst(batch.releases, first.releases, n);
    n -= MoveFirst(batch.progress, first.progress, n);
    MoveFirst(batch.sleeps, first.sleeps, n);
    return {std::move(first), std::move(batch)};
}

void Settler::SendIfReady() {
    if (!connection_.idle() || empty() || EventLoop::Now() < paused_until_) return;
    bool isolating = !isolating_.empty();
    SettleBatch batch;
    if (isolating) {
        batch = std::move(isolating_.front());
        isolating_.pop_front();
    } else {
        batch = std::move(pending_);
        pending_ = SettleBatch{};
    }
    auto &hb = batch.heartbeats;
    hb.erase(
        std::remove_if(hb.begin(), hb.end(),
                       [this](const HeartbeatItem &h) { return !callbacks_.heartbeat_wanted(h); }),
        hb.end());
    if (batch.empty()) return;
    Statement st = BuildSettleStatement(batch);
    TimePoint sent = EventLoop::Now();
    connection_.Send(st.sql, st.params,
                     [this, batch = std::move(batch), isolating, sent](PgOutcome outcome) mutable {
                         OnOutcome(std::move(batch), isolating, sent, std::move(outcome));
                     });
}

void Settler::OnOutcome(SettleBatch batch, bool isolating, TimePoint sent, PgOutcome outcome) {
    if (outcome.failure == PgFailure::kNone) {
        SettleAcks acks = ParseSettleResult(outcome.result.get());
        callbacks_.on_answered(batch, acks, sent);
        return;
    }
    bool retry = outcome.failure == PgFailure::kConnection || TransientSqlState(outcome.sqlstate);
    if (!retry && batch.size() > 1) {
        // Any one settle may be what the database refuses (a trigger, a
        // constraint, a bug): apply the others, find that one.
        if (!isolating)
            Log(LogLevel::kWarn, "settle batch failed; settling its jobs in smaller batches",
                {{"error", outcome.error},
                 {"sqlstate", outcome.sqlstate},
                 {"settles", std::to_string(batch.size())}});
        auto [first, second] = SplitBatch(std::move(batch));
        isolating_.push_front(std::move(second));
        isolating_.push_front(std::move(first));
        return;
    }
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
    // A part of an isolated batch goes back to the front of its line.
    bool unknown = outcome.failure == PgFailure::kConnection;
    callbacks_.on_failed(batch, outcome, true);
    SettleBatch scratch;
    SettleBatch &again = isolating ? scratch : pending_;
    for (auto &c : batch.completes) {
        c.resent |= unknown;
        again.completes.push_back(std::move(c));
    }
    for (auto &f : batch.fails) {
        f.resent |= unknown;
        again.fails.push_back(std::move(f));
    }
    for (auto &r : batch.releases) again.releases.push_back(r);
    for (auto &p : batch.progress) again.progress.push_back(std::move(p));
    for (auto &s : batch.sleeps) {
        s.resent |= unknown;
        again.sleeps.push_back(std::move(s));
    }
    if (isolating && !scratch.empty()) isolating_.push_front(std::move(scratch));
}

}  // namespace jobq
