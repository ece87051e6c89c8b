// The settle side of the runner: the settles of a tick, sent as one batch
// on the settle connection, and what happens when the database does not
// answer it.
//
// Vocabulary (see sql_protocol.h for settle, batch and acks): *pending* is
// the batch being filled during the tick; a batch is *answered* when the
// statement returned (its acks say which settles were applied) and
// *rejected* when the database refused it for good. A batch whose outcome is
// unknown (connection lost) or whose error may heal (serialization,
// statement timeout, ...) is put back and re-sent: settles are idempotent
// per token. A batch refused with any other error is *isolated*: split in
// halves, each sent on its own, and again for a half that fails, so the
// good settles are applied and only the one that fails alone is rejected
// (about 2 log2(n) statements for one bad settle among n). The Settler
// knows no jobs: the Runner decides, through the
// callbacks, which heartbeats are still wanted and what an answer means.
#pragma once

#include <deque>
#include <functional>
#include <utility>

#include "event_loop.h"
#include "pg_connection.h"
#include "sql_protocol.h"

namespace jobq {

class Settler {
  public:
    struct Callbacks {
        // A heartbeat queued earlier may be for a job that has ended since:
        // false drops it, so one statement never both heartbeats and settles
        // the same job.
        std::function<bool(const HeartbeatItem &)> heartbeat_wanted;
        // The statement returned: `acks` says which settles were applied.
        std::function<void(const SettleBatch &, const SettleAcks &, TimePoint sent)> on_answered;
        // The batch was not applied. will_resend: its settles are pending
        // again (heartbeats are not: the next interval sends new ones);
        // otherwise it holds one settle, refused alone (see isolated).
        std::function<void(const SettleBatch &, const PgOutcome &, bool will_resend)> on_failed;
    };

    Settler(PgConnection &connection, Callbacks callbacks);

    // Fill during a tick; sent by SendIfReady.
    SettleBatch &pending() { return pending_; }
    // Nothing waits to be sent.
    bool empty() const { return pending_.empty() && isolating_.empty(); }
    // Sends the next batch (parts of an isolated one first, then the
    // pending one) if the connection is idle and no pause holds.
    void SendIfReady();

  private:
    void OnOutcome(SettleBatch batch, bool isolating, TimePoint sent, PgOutcome outcome);

    PgConnection &connection_;
    Callbacks callbacks_;
    SettleBatch pending_;
    std::deque<SettleBatch> isolating_;  // parts of a refused batch, sent one by one
    TimePoint paused_until_;             // after a transient server-side error
};

// The first half of the batch's settles (in the order completes, fails,
// heartbeats, releases, progress, sleeps) and the rest; both non-empty for a batch of two or more.
std::pair<SettleBatch, SettleBatch> SplitBatch(SettleBatch batch);

}  // namespace jobq
