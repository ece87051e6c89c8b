// worker handler (see handlers/worker.h for the vocabulary and error
// policy, docs/handler-protocol.md for the protocol).
#include "handlers/worker.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include <fmt/format.h>

#include "json_text.h"

extern char **environ;

namespace jobq {
namespace {

// How long a child may take to answer hello (interpreters import slowly).
constexpr Millis kHandshakeTimeout{30'000};
// Bytes a line may have beyond max_output (the message around a result).
constexpr size_t kLineOverhead = 64 * 1024;
// Of an oversized line, the bytes kept to find its job id.
constexpr size_t kOversizedPrefix = 4096;
// Bytes waiting for a child's stdin before it counts as not reading.
constexpr size_t kMaxUnwritten = 16 << 20;
// Lines a child may have logged (log messages and complaints) per second.
constexpr int kLogLinesPerSecond = 50;
constexpr Millis kCheckEvery{100};
// After a child closed its stdout, how long to wait for its exit status.
constexpr Millis kExitWait{200};

void SetNonBlocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

const char *TypeName(ChildMessageType type) {
    switch (type) {
        case ChildMessageType::kReady:
            return "ready";
        case ChildMessageType::kProgress:
            return "progress";
        case ChildMessageType::kHeartbeat:
            return "heartbeat";
        case ChildMessageType::kSleep:
            return "sleep";
        case ChildMessageType::kComplete:
            return "complete";
        case ChildMessageType::kFail:
            return "fail";
        case ChildMessageType::kLog:
            return "log";
    }
    return "?";
}

std::string DescribeExit(int status) {
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        const char *name = sigabbrev_np(sig);
        return fmt::format("was killed by signal {} (SIG{})", sig, name ? name : "?");
    }
    return fmt::format("exited with status {}", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

Outcome Failed(std::string error) {
    Outcome o;
    o.kind = OutcomeKind::kFail;
    o.error = std::move(error);
    return o;
}

}  // namespace

// The handle the runner holds for one job; destroying it stops the job.
class WorkerPool::JobHandle : public Execution {
  public:
    JobHandle(WorkerPool &pool, int64_t id, uint64_t serial)
        : pool_(pool), id_(id), serial_(serial) {}
    ~JobHandle() override { pool_.Abandon(id_, serial_); }

  private:
    WorkerPool &pool_;
    int64_t id_;
    uint64_t serial_;
};

WorkerPool::WorkerPool(EventLoop &loop, ChildReaper &reaper, const QueueConfig &queue,
                       Events events)
    : loop_(loop), reaper_(reaper), queue_(queue), events_(std::move(events)) {
    for (int i = 0; i < queue_.processes; ++i)
        children_.push_back(std::make_unique<Child>(
            i, static_cast<uint64_t>(getpid()) * 1000003u + static_cast<uint64_t>(i)));
}

WorkerPool::~WorkerPool() {
    loop_.Cancel(place_timer_);
    loop_.Cancel(check_timer_);
    for (auto &cp : children_) {
        Child &c = *cp;
        for (EventLoop::TimerId *t :
             {&c.restart_timer, &c.handshake_timer, &c.kill_timer, &c.break_timer})
            loop_.Cancel(*t);
        for (UniqueFd *fd : {&c.in, &c.out})
            if (fd->valid()) loop_.Unwatch(fd->get());
        for (auto &[id, flight] : c.jobs) loop_.Cancel(flight.deadline_timer);
        if (c.pid > 0) {
            kill(-c.pid, SIGKILL);
            reaper_.Forget(c.pid);
        }
    }
}

void WorkerPool::Start() {
    for (auto &c : children_) Spawn(*c);
    check_timer_ = loop_.After(kCheckEvery, [this] {
        check_timer_ = 0;
        CheckLeftovers();
    });
}

int WorkerPool::Load(const Child &c) const {
    return static_cast<int>(c.jobs.size() + c.leftovers.size());
}

int WorkerPool::Slots() const {
    int slots = 0;
    for (const auto &c : children_) {
        if (c->state == ChildState::kReady || c->state == ChildState::kHandshaking)
            slots += std::max(0, queue_.concurrency - Load(*c));
    }
    return std::max(0, slots - static_cast<int>(pending_.size()));
}

void WorkerPool::Spawn(Child &c) {
    c.restart_timer = 0;
    if (stopping_) return;
    // Starting: a failure below is a break like any other (logged, retried).
    c.state = ChildState::kHandshaking;
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0) return Break(c, fmt::format("pipe: {}", std::strerror(errno)));
    UniqueFd in_r(in[0]), in_w(in[1]);
    if (pipe2(out, O_CLOEXEC) != 0) return Break(c, fmt::format("pipe: {}", std::strerror(errno)));
    UniqueFd out_r(out[0]), out_w(out[1]);

    std::vector<std::string> env_strings;
    for (char **e = environ; *e; ++e) {
        std::string_view entry(*e);
        if (entry.rfind("JOBQ_QUEUE=", 0) == 0 || entry.rfind("JOBQ_WORKER_PROTOCOL=", 0) == 0)
            continue;
        env_strings.emplace_back(entry);
    }
    env_strings.push_back("JOBQ_QUEUE=" + queue_.name);
    env_strings.push_back(fmt::format("JOBQ_WORKER_PROTOCOL={}", kWorkerProtocolVersion));
    std::vector<char *> envp = ExecArray(env_strings);
    std::vector<std::string> args = queue_.command;
    std::vector<char *> argv = ExecArray(args);

    int error = 0;
    // stderr is the runner's own: the child's tracebacks land in its log.
    pid_t pid =
        SpawnProcess(argv.data(), envp.data(), in_r.get(), out_w.get(), STDERR_FILENO, -1, &error);
    if (pid < 0) {
        return Break(c, fmt::format("could not be started: {}: {}", queue_.command[0],
                                    std::strerror(error)));
    }
    ++c.generation;
    c.pid = pid;
    c.exited = false;
    c.state = ChildState::kHandshaking;
    c.in = std::move(in_w);
    c.out = std::move(out_r);
    c.unwritten.clear();
    c.partial.clear();
    c.skipping = false;
    SetNonBlocking(c.in.get());
    SetNonBlocking(c.out.get());
    Child *cp = &c;
    reaper_.Add(pid, [this, cp](int status) { OnExit(*cp, status); });
    loop_.Watch(c.out.get(), EPOLLIN, [this, cp](uint32_t) { OnReadable(*cp); });
    Send(c, HelloLine(queue_.name, queue_.concurrency));
    c.handshake_timer = loop_.After(kHandshakeTimeout, [this, cp] {
        cp->handshake_timer = 0;
        Break(*cp, fmt::format("did not answer the handshake within {}",
                               FormatDuration(kHandshakeTimeout)));
    });
}

void WorkerPool::Send(Child &c, const std::string &line) {
    if (!c.in.valid()) return;
    if (c.unwritten.size() + line.size() > kMaxUnwritten)
        return BreakSoon(c, "does not read its stdin");
    c.unwritten += line;
    Flush(c);
}

void WorkerPool::Flush(Child &c) {
    size_t written = 0;
    while (written < c.unwritten.size()) {
        ssize_t n = write(c.in.get(), c.unwritten.data() + written, c.unwritten.size() - written);
        if (n > 0) {
            written += static_cast<size_t>(n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) break;
        c.unwritten.clear();
        return BreakSoon(c, "closed its stdin");
    }
    c.unwritten.erase(0, written);
    Child *cp = &c;
    bool watching = loop_.Watching(c.in.get());
    if (!c.unwritten.empty() && !watching)
        loop_.Watch(c.in.get(), EPOLLOUT, [this, cp](uint32_t) { Flush(*cp); });
    else if (c.unwritten.empty() && watching)
        loop_.Unwatch(c.in.get());
}

void WorkerPool::OnReadable(Child &c) {
    uint64_t generation = c.generation;
    size_t limit = queue_.max_output + kLineOverhead;
    char buf[65536];
    for (;;) {
        ssize_t n = read(c.out.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return;
        if (n <= 0) {
            loop_.Unwatch(c.out.get());
            c.out.Reset();
            // A child that exits closes its stdout first: wait a moment for
            // its exit status, the better reason. At shutdown, both are
            // expected.
            if (c.state != ChildState::kStopping) BreakSoon(c, "closed its stdout", kExitWait);
            return;
        }
        std::string_view data(buf, static_cast<size_t>(n));
        while (!data.empty()) {
            size_t nl = data.find('\n');
            std::string_view piece = data.substr(0, nl);
            if (c.skipping) {
                c.skipped_bytes += piece.size();
                if (c.skipped_prefix.size() < kOversizedPrefix)
                    c.skipped_prefix.append(
                        piece.substr(0, kOversizedPrefix - c.skipped_prefix.size()));
            } else if (c.partial.size() + piece.size() > limit) {
                // Over the limit: keep its start (to find the job), drop the rest.
                c.skipping = true;
                c.skipped_bytes = c.partial.size() + piece.size();
                c.skipped_prefix = c.partial.substr(0, kOversizedPrefix);
                if (c.skipped_prefix.size() < kOversizedPrefix)
                    c.skipped_prefix.append(
                        piece.substr(0, kOversizedPrefix - c.skipped_prefix.size()));
                c.partial.clear();
            } else {
                c.partial.append(piece);
            }
            if (nl == std::string_view::npos) break;
            data.remove_prefix(nl + 1);
            if (c.skipping) {
                HandleOversized(c);
            } else {
                std::string line = std::move(c.partial);
                c.partial.clear();
                if (!line.empty() && line.back() == '\r') line.pop_back();
                if (!line.empty() && !HandleLine(c, line)) return;
            }
            if (c.generation != generation || c.state == ChildState::kDown) return;
        }
    }
}

void WorkerPool::HandleOversized(Child &c) {
    size_t bytes = c.skipped_bytes;
    std::optional<int64_t> id = PeekJobId(c.skipped_prefix);
    c.skipping = false;
    c.skipped_prefix.clear();
    c.skipped_bytes = 0;
    size_t limit = queue_.max_output + kLineOverhead;
    if (id && c.jobs.count(*id)) {
        Complain(c, "worker sent a line over the size limit; the job fails",
                 {{"job", std::to_string(*id)}, {"bytes", std::to_string(bytes)}});
        StopFlight(c, *id, "result too large",
                   fmt::format("result too large: the worker's line of {} bytes exceeds {} "
                               "(max_output + 64 KiB)",
                               bytes, limit));
        return;
    }
    Complain(c, "worker sent a line over the size limit; ignored",
             {{"bytes", std::to_string(bytes)}});
}

bool WorkerPool::HandleLine(Child &c, std::string_view line) {
    ParsedLine parsed = ParseChildLine(line);
    if (!parsed.message) {
        if (c.state == ChildState::kHandshaking) {
            Break(c, fmt::format("broke the handshake: {}", parsed.error));
            return false;
        }
        if (parsed.id && c.jobs.count(*parsed.id)) {
            Complain(c, "worker sent a malformed line; the job fails",
                     {{"job", std::to_string(*parsed.id)}, {"error", parsed.error}});
            StopFlight(c, *parsed.id, "protocol error",
                       fmt::format("worker protocol error: {}", parsed.error));
            return true;
        }
        Complain(c, "worker sent a malformed line; ignored",
                 {{"error", parsed.error},
                  {"line", SanitizeText(line.substr(0, std::min<size_t>(line.size(), 120)))}});
        return true;
    }
    ChildMessage &m = *parsed.message;
    if (c.state == ChildState::kHandshaking) {
        if (m.type != ChildMessageType::kReady) {
            Break(c, fmt::format("broke the handshake: sent \"{}\" before \"ready\"",
                                 TypeName(m.type)));
            return false;
        }
        if (m.protocol != kWorkerProtocolVersion) {
            Break(c, fmt::format("speaks protocol {}, the runner speaks {}", m.protocol,
                                 kWorkerProtocolVersion));
            return false;
        }
        loop_.Cancel(c.handshake_timer);
        c.state = ChildState::kReady;
        PlacePending();
        if (events_.on_slots) events_.on_slots();
        return true;
    }
    if (m.type == ChildMessageType::kReady) {
        Complain(c, "worker sent a second \"ready\"; ignored", {});
        return true;
    }
    if (m.type == ChildMessageType::kLog) {
        if (!LogAllowed(c)) return true;
        LogLevel level = LogLevel::kInfo;
        // The child asked for the line: info shows without --verbose too.
        if (m.level == "info") level = LogLevel::kNotice;
        if (m.level == "debug") level = LogLevel::kDebug;
        if (m.level == "warn" || m.level == "warning") level = LogLevel::kWarn;
        if (m.level == "error") level = LogLevel::kError;
        Log(level, m.message,
            {{"queue", queue_.name},
             {"pid", std::to_string(c.pid)},
             {"job", m.has_id ? std::to_string(m.id) : ""}});
        return true;
    }
    auto it = c.jobs.find(m.id);
    if (it == c.jobs.end()) {
        auto left = c.leftovers.find(m.id);
        if (left != c.leftovers.end()) {
            // A stopped job: its end is expected; anything else is moot.
            if (m.type == ChildMessageType::kComplete || m.type == ChildMessageType::kFail ||
                m.type == ChildMessageType::kSleep)
                c.leftovers.erase(left);
            return true;
        }
        Complain(c,
                 "worker sent a message for a job it is not running (unknown or finished); ignored",
                 {{"type", TypeName(m.type)}, {"job", std::to_string(m.id)}});
        return true;
    }
    Outcome o;
    switch (m.type) {
        case ChildMessageType::kProgress:
            if (events_.on_progress) events_.on_progress(m.id, m.progress, m.state);
            return true;
        case ChildMessageType::kHeartbeat:
            return true;  // the runner keeps the lease of every running job itself
        case ChildMessageType::kSleep:
            o.kind = OutcomeKind::kSleep;
            o.sleep_for = m.sleep_for;
            o.state = m.state;
            break;
        case ChildMessageType::kComplete:
            o.kind = OutcomeKind::kComplete;
            o.result = m.result;
            break;
        case ChildMessageType::kFail:
            o.kind = m.discard ? OutcomeKind::kDiscard
                               : (m.retry_in ? OutcomeKind::kRetry : OutcomeKind::kFail);
            o.error = m.error;
            o.retry_in = m.retry_in;
            break;
        default:
            return true;
    }
    c.backoff.Reset();  // it finishes jobs: a later crash starts from short delays
    Finish(c, m.id, std::move(o));
    return true;
}

void WorkerPool::Finish(Child &c, int64_t id, Outcome outcome) {
    auto it = c.jobs.find(id);
    if (it == c.jobs.end()) return;
    DoneCallback done = std::move(it->second.done);
    loop_.Cancel(it->second.deadline_timer);
    c.jobs.erase(it);
    if (done) done(std::move(outcome));
}

void WorkerPool::StopFlight(Child &c, int64_t id, const char *reason, const std::string &error) {
    auto it = c.jobs.find(id);
    if (it == c.jobs.end()) return;
    DoneCallback done = std::move(it->second.done);
    loop_.Cancel(it->second.deadline_timer);
    c.jobs.erase(it);
    c.leftovers[id] = EventLoop::Now() + queue_.kill_grace;
    Send(c, CancelLine(id, reason));
    if (done) done(Failed(error));
}

void WorkerPool::Abandon(int64_t id, uint64_t serial) {
    for (auto it = pending_.begin(); it != pending_.end(); ++it) {
        if (it->job.id == id && it->serial == serial) {
            pending_.erase(it);
            return;
        }
    }
    for (auto &cp : children_) {
        auto it = cp->jobs.find(id);
        if (it == cp->jobs.end() || it->second.serial != serial) continue;
        it->second.done = nullptr;  // the runner asked: no outcome wanted
        StopFlight(*cp, id, "stopped", "");
        return;
    }
}

WorkerPool::Child *WorkerPool::PickChild(int64_t id, bool ready_only) {
    Child *best = nullptr;
    for (auto &cp : children_) {
        Child &c = *cp;
        bool usable =
            c.state == ChildState::kReady || (!ready_only && c.state == ChildState::kHandshaking);
        if (!usable || Load(c) >= queue_.concurrency) continue;
        // One id once per child, so a line naming it is never ambiguous.
        if (c.jobs.count(id) || c.leftovers.count(id)) continue;
        if (!best || Load(c) < Load(*best)) best = &c;
    }
    return best;
}

std::unique_ptr<Execution> WorkerPool::StartJob(const ClaimedJob &job, DoneCallback done) {
    uint64_t serial = next_serial_++;
    pending_.push_back(Pending{serial, job, std::move(done)});
    if (!place_timer_)
        place_timer_ = loop_.After(Millis(0), [this] {
            place_timer_ = 0;
            PlacePending();
        });
    return std::make_unique<JobHandle>(*this, job.id, serial);
}

void WorkerPool::Place(Child &c, Pending p) {
    int64_t id = p.job.id;
    Flight flight{p.serial, std::move(p.done), 0};
    Child *cp = &c;
    flight.deadline_timer = loop_.After(queue_.timeout, [this, cp, id] {
        auto it = cp->jobs.find(id);
        if (it == cp->jobs.end()) return;
        it->second.deadline_timer = 0;
        StopFlight(*cp, id, "deadline",
                   fmt::format("timed out after {}", FormatDuration(queue_.timeout)));
    });
    c.jobs.emplace(id, std::move(flight));
    auto deadline = std::chrono::system_clock::now() + queue_.timeout;
    int64_t deadline_ms = std::chrono::duration_cast<Millis>(deadline.time_since_epoch()).count();
    Send(c, StartLine(p.job, deadline_ms, queue_.timeout));
}

void WorkerPool::PlacePending() {
    std::deque<Pending> waiting;
    std::vector<DoneCallback> released;
    while (!pending_.empty()) {
        Pending p = std::move(pending_.front());
        pending_.pop_front();
        if (Child *c = PickChild(p.job.id, true)) {
            Place(*c, std::move(p));
        } else if (!stopping_ && PickChild(p.job.id, false)) {
            waiting.push_back(std::move(p));  // a handshaking child will take it
        } else {
            released.push_back(std::move(p.done));
        }
    }
    pending_ = std::move(waiting);
    for (DoneCallback &done : released) {
        Outcome o;
        o.kind = OutcomeKind::kRelease;
        o.error = "no worker process could take the job";
        done(std::move(o));
    }
}

void WorkerPool::OnExit(Child &c, int status) {
    c.exited = true;  // reaped: its pid may be reused, never signal it again
    if (c.state == ChildState::kStopping) {
        c.pid = -1;
        loop_.Cancel(c.kill_timer);
        c.state = ChildState::kDown;
        for (UniqueFd *fd : {&c.in, &c.out}) {
            if (fd->valid()) loop_.Unwatch(fd->get());
            fd->Reset();
        }
        // Jobs still on it at shutdown fail like any other crash.
        std::vector<std::pair<int64_t, uint64_t>> left;
        for (auto &[id, f] : c.jobs) left.emplace_back(id, f.serial);
        for (auto [id, serial] : left)
            Finish(c, id, Failed("worker process stopped at shutdown while the job ran"));
        c.leftovers.clear();
        return;
    }
    Break(c, DescribeExit(status));
}

void WorkerPool::BreakSoon(Child &c, const std::string &reason, Millis delay) {
    if (c.break_timer) return;
    c.break_reason = reason;
    Child *cp = &c;
    uint64_t generation = c.generation;
    c.break_timer = loop_.After(delay, [this, cp, generation] {
        cp->break_timer = 0;
        if (cp->generation == generation && cp->state != ChildState::kDown)
            Break(*cp, cp->break_reason);
    });
}

void WorkerPool::Break(Child &c, const std::string &reason) {
    if (c.state == ChildState::kDown) return;
    pid_t pid = c.pid;
    for (EventLoop::TimerId *t : {&c.handshake_timer, &c.kill_timer, &c.break_timer})
        loop_.Cancel(*t);
    for (UniqueFd *fd : {&c.in, &c.out}) {
        if (fd->valid()) loop_.Unwatch(fd->get());
        fd->Reset();
    }
    if (pid > 0 && !c.exited) {
        kill(-pid, SIGKILL);
        reaper_.Forget(pid);  // still reaped, nobody told
    }
    c.pid = -1;
    ChildState was = c.state;
    c.state = ChildState::kDown;
    ++c.generation;
    std::vector<std::pair<int64_t, DoneCallback>> failed;
    for (auto &[id, flight] : c.jobs) {
        loop_.Cancel(flight.deadline_timer);
        failed.emplace_back(id, std::move(flight.done));
    }
    c.jobs.clear();
    c.leftovers.clear();
    Millis delay = stopping_ ? Millis(0) : c.backoff.Next();
    Log(LogLevel::kError, stopping_ ? "worker process failed" : "worker process failed; restarting",
        {{"queue", queue_.name},
         {"pid", std::to_string(pid)},
         {"reason", reason},
         {"jobs_failed", std::to_string(failed.size())},
         {"restart_in", stopping_ ? "never" : FormatDuration(delay)}});
    (void)was;
    if (!stopping_) {
        Child *cp = &c;
        c.restart_timer = loop_.After(delay, [this, cp] { Spawn(*cp); });
    }
    std::string error = fmt::format("worker process {} {} while the job ran", pid, reason);
    for (auto &[id, done] : failed)
        if (done) done(Failed(error));
    // Jobs waiting for this child go to another, or back to the queue.
    if (!pending_.empty()) PlacePending();
}

void WorkerPool::CheckLeftovers() {
    TimePoint now = EventLoop::Now();
    for (auto &cp : children_) {
        Child &c = *cp;
        NoteDroppedLogs(c, now);
        if (c.state != ChildState::kReady) continue;
        for (auto &[id, end_by] : c.leftovers) {
            if (now < end_by) continue;
            Break(c, fmt::format("did not end job {} within {} of its cancel (hung)", id,
                                 FormatDuration(queue_.kill_grace)));
            break;
        }
    }
    check_timer_ = loop_.After(kCheckEvery, [this] {
        check_timer_ = 0;
        CheckLeftovers();
    });
}

void WorkerPool::NoteDroppedLogs(Child &c, TimePoint now) {
    if (now - c.log_window < std::chrono::seconds(1)) return;
    if (c.log_dropped > 0)
        Log(LogLevel::kWarn, "worker log lines dropped (more than 50 a second)",
            {{"queue", queue_.name},
             {"pid", std::to_string(c.pid)},
             {"dropped", std::to_string(c.log_dropped)}});
    c.log_window = now;
    c.log_lines = 0;
    c.log_dropped = 0;
}

bool WorkerPool::LogAllowed(Child &c) {
    NoteDroppedLogs(c, EventLoop::Now());
    if (c.log_lines >= kLogLinesPerSecond) {
        ++c.log_dropped;
        return false;
    }
    ++c.log_lines;
    return true;
}

void WorkerPool::Complain(Child &c, std::string_view what, std::initializer_list<LogField> fields) {
    if (!LogAllowed(c)) return;
    std::vector<LogField> all(fields);
    // Log takes an initializer_list: the common fields first, then up to three.
    auto at = [&](size_t i) { return i < all.size() ? all[i] : LogField{"", ""}; };
    LogField a = at(0), b = at(1), d = at(2);
    Log(LogLevel::kWarn, what, {{"queue", queue_.name}, {"pid", std::to_string(c.pid)}, a, b, d});
}

void WorkerPool::Shutdown() {
    stopping_ = true;
    for (auto &cp : children_) {
        Child &c = *cp;
        loop_.Cancel(c.restart_timer);
        if (c.pid <= 0) {
            c.state = ChildState::kDown;
            continue;
        }
        Send(c, ShutdownLine());
        kill(-c.pid, SIGTERM);
        c.state = ChildState::kStopping;
        Child *cp2 = &c;
        c.kill_timer = loop_.After(queue_.kill_grace, [cp2] {
            cp2->kill_timer = 0;
            if (cp2->pid > 0) kill(-cp2->pid, SIGKILL);
        });
    }
    PlacePending();  // nothing may start now: release what waits
}

bool WorkerPool::Stopped() const {
    for (const auto &c : children_)
        if (c->pid > 0) return false;
    return true;
}

}  // namespace jobq
