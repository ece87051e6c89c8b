// The `worker` handler: long-lived processes that run many jobs each,
// spoken to in line-delimited JSON (docs/handler-protocol.md,
// handlers/worker_protocol.h).
//
// Vocabulary: a queue's *pool* holds `processes` *children*, each started
// from the queue's `command` (no shell, own process group, killed if the
// runner dies). A child is *handshaking* from its start until it answers
// the runner's hello with ready, then *ready*. A job handed to the pool is
// *started* once its start line went to a ready child (up to `concurrency`
// per child), and *pending* while it waits for a handshaking child. A
// *stopped* job (cancelled, past its deadline, its lease lost, the runner
// shutting down) is told to the child with a cancel line and becomes a
// *leftover* until the child ends it; a leftover still takes a slot.
// Error policy: a child that exits, closes its stdout, stops reading its
// stdin, fails the handshake, or keeps a leftover past kill_grace is
// *broken*: it is killed, each of its started jobs fails (a counted
// attempt) with an error naming the cause, pending jobs no other child can
// take are released, and it is started again after a jittered backoff.
// A line the runner cannot use is logged once (rate-limited per child);
// if it named a job the child runs, that job fails. The runner and the
// other jobs are never affected.
#pragma once

#include <sys/types.h>

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "backoff.h"
#include "config.h"
#include "event_loop.h"
#include "handlers/exec.h"
#include "handlers/worker_protocol.h"
#include "job.h"
#include "log.h"
#include "unique_fd.h"

namespace jobq {

class WorkerPool {
  public:
    struct Events {
        // A running job reported progress and/or state (JSON text).
        std::function<void(int64_t id, std::optional<std::string> progress,
                           std::optional<std::string> state)>
            on_progress;
        // A child became ready: the queue has room for claims again.
        std::function<void()> on_slots;
    };

    WorkerPool(EventLoop &loop, ChildReaper &reaper, const QueueConfig &queue, Events events);
    ~WorkerPool();  // SIGKILL to every child's process group
    WorkerPool(const WorkerPool &) = delete;
    WorkerPool &operator=(const WorkerPool &) = delete;

    // Starts the children.
    void Start();
    // Jobs the pool can take now: free slots of ready and handshaking
    // children (a broken child's slots come back when it is ready again).
    int Slots() const;
    // Hands a job to a child (or queues it, see above). `done` is called
    // once, never from inside StartJob; destroying the execution stops the
    // job (a cancel line) and suppresses its outcome.
    std::unique_ptr<jobq::Execution> StartJob(const ClaimedJob &job, DoneCallback done);
    // Drain: a shutdown line and SIGTERM to every child, SIGKILL after
    // kill_grace; no restarts.
    void Shutdown();
    // No child process is left (after Shutdown).
    bool Stopped() const;

  private:
    struct Flight {
        uint64_t serial;
        DoneCallback done;
        EventLoop::TimerId deadline_timer = 0;
    };
    struct Pending {
        uint64_t serial;
        ClaimedJob job;
        DoneCallback done;
    };
    enum class ChildState { kDown, kHandshaking, kReady, kStopping };
    struct Child {
        int index = 0;
        uint64_t generation = 0;  // bumped at every start: stale callbacks check it
        ChildState state = ChildState::kDown;
        pid_t pid = -1;
        bool exited = false;  // reaped (pid kept for messages only)
        UniqueFd in, out;  // our ends of its stdin and stdout
        std::string unwritten;
        std::string partial;    // bytes of an unfinished line
        bool skipping = false;  // inside a line over the limit
        std::string skipped_prefix;
        size_t skipped_bytes = 0;
        std::unordered_map<int64_t, Flight> jobs;
        std::unordered_map<int64_t, TimePoint> leftovers;  // id -> end-by
        Backoff backoff{Millis(200), Millis(30'000), 0};
        EventLoop::TimerId restart_timer = 0, handshake_timer = 0, kill_timer = 0, break_timer = 0;
        std::string break_reason;
        // Log rate limit: lines this second, lines dropped since the last note.
        TimePoint log_window;
        int log_lines = 0;
        uint64_t log_dropped = 0;
        Child(int i, uint64_t seed) : index(i), backoff(Millis(200), Millis(30'000), seed) {}
    };

    void Spawn(Child &c);
    void OnReadable(Child &c);
    // Returns false if the child broke while handling the line.
    bool HandleLine(Child &c, std::string_view line);
    void HandleOversized(Child &c);
    void OnExit(Child &c, int status);
    // Breaks the child now (see the error policy above).
    void Break(Child &c, const std::string &reason);
    // Breaks it after `delay` (from a call that must not end jobs).
    void BreakSoon(Child &c, const std::string &reason, Millis delay = Millis(0));
    void Send(Child &c, const std::string &line);
    void Flush(Child &c);
    void Place(Child &c, Pending pending);
    // Places pending jobs on ready children; keeps those a handshaking
    // child will take; releases the rest.
    void PlacePending();
    Child *PickChild(int64_t id, bool ready_only);
    int Load(const Child &c) const;
    // Ends a started job: removes it and calls its done callback.
    void Finish(Child &c, int64_t id, Outcome outcome);
    // A stopped job: cancel line (with `reason`), leftover until the child
    // ends it; its done callback, if still wanted, gets a failure `error`.
    void StopFlight(Child &c, int64_t id, const char *reason, const std::string &error);
    void Abandon(int64_t id, uint64_t serial);
    void CheckLeftovers();
    // Rate-limited warning about the child's output.
    void Complain(Child &c, std::string_view what, std::initializer_list<LogField> fields);
    bool LogAllowed(Child &c);
    // Logs how many lines the rate limit dropped, once its second is over.
    void NoteDroppedLogs(Child &c, TimePoint now);

    class JobHandle;
    friend class JobHandle;

    EventLoop &loop_;
    ChildReaper &reaper_;
    const QueueConfig &queue_;
    Events events_;
    std::vector<std::unique_ptr<Child>> children_;
    std::deque<Pending> pending_;
    uint64_t next_serial_ = 1;
    bool stopping_ = false;
    EventLoop::TimerId place_timer_ = 0, check_timer_ = 0;
};

}  // namespace jobq
