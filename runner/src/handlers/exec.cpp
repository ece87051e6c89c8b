// exec handler (see handlers/exec.h for the contract with the command).
#include "handlers/exec.h"

#include <fcntl.h>
#include <signal.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "handlers/worker_protocol.h"
#include "json_text.h"
#include "log.h"
#include "unique_fd.h"

extern char **environ;

namespace jobq {
namespace {

constexpr size_t kStderrTail = 4096;
// The command's end of the talk-back channel.
constexpr int kTalkbackFd = 3;
// Talk-back log lines kept per job (the rest are counted).
constexpr int kTalkbackLogLines = 100;

std::string TrimSpace(std::string s) {
    while (!s.empty() &&
           (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t'))
        s.pop_back();
    size_t start = s.find_first_not_of(" \t\r\n");
    return start == std::string::npos ? std::string() : s.substr(start);
}

void SetNonBlocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

// Starting a command: clone(CLONE_VM | CLONE_VFORK) on a stack of its own,
// as posix_spawn does, so no page tables of the runner are copied (a fork
// of a runner with tens of MB resident was a visible part of a handler's
// start latency) and the runner resumes once the command has exec'd. The
// child shares the runner's memory until execve: it makes system calls
// only and reports an exec error through the request.
struct SpawnRequest {
    int stdin_fd, stdout_fd, stderr_fd;
    int talkback_fd;  // becomes fd 3 of the command; -1: none
    char **argv, **envp;
    pid_t parent;
    int exec_error;  // set by the child when it cannot exec
};

int SpawnedChildMain(void *arg) {
    auto *req = static_cast<SpawnRequest *>(arg);
    setpgid(0, 0);  // own process group: timeouts signal the whole tree
    // If the runner dies (even by SIGKILL) the command dies with it instead
    // of running on as an orphan whose job will be re-run.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != req->parent) _exit(127);
    // The runner ignores SIGPIPE and blocks the signals it reads through
    // signalfd; neither may leak into the command.
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    static const int kReset[] = {SIGPIPE, SIGINT,  SIGTERM, SIGHUP,
                                 SIGQUIT, SIGCHLD, SIGUSR1, SIGUSR2};
    for (int sig : kReset) sigaction(sig, &dfl, nullptr);
    sigset_t empty;
    sigemptyset(&empty);
    sigprocmask(SIG_SETMASK, &empty, nullptr);
    if (dup2(req->stdin_fd, 0) < 0 || dup2(req->stdout_fd, 1) < 0 || dup2(req->stderr_fd, 2) < 0) {
        req->exec_error = errno;
        _exit(127);
    }
    // dup2 onto itself keeps close-on-exec: clear it by hand then.
    if (req->talkback_fd >= 0 &&
        (req->talkback_fd == kTalkbackFd ? fcntl(kTalkbackFd, F_SETFD, 0)
                                         : dup2(req->talkback_fd, kTalkbackFd)) < 0) {
        req->exec_error = errno;
        _exit(127);
    }
    execve(req->argv[0], req->argv, req->envp);
    req->exec_error = errno;
    _exit(127);
}

pid_t SpawnChild(SpawnRequest *req) {
    // One stack serves every spawn: CLONE_VFORK suspends the runner until
    // the child has exec'd or exited, so two children never use it at once.
    constexpr size_t kStackSize = 64 * 1024;
    static void *stack = nullptr;
    if (stack == nullptr) {
        void *m = mmap(nullptr, kStackSize, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
        if (m == MAP_FAILED) return -1;
        stack = m;
    }
    return clone(SpawnedChildMain, static_cast<char *>(stack) + kStackSize,
                 CLONE_VM | CLONE_VFORK | SIGCHLD, req);
}

class ExecExecution : public Execution {
  public:
    ExecExecution(EventLoop &loop, ChildReaper &reaper, const QueueConfig &queue,
                  const ClaimedJob &job, DoneCallback done, ProgressCallback progress)
        : loop_(loop),
          reaper_(reaper),
          queue_(queue),
          done_(std::move(done)),
          progress_(std::move(progress)),
          input_(ExecDocument(job)),
          job_id_(job.id) {
        Spawn(job);
    }

    ~ExecExecution() override {
        loop_.Cancel(timeout_timer_);
        loop_.Cancel(kill_timer_);
        loop_.Cancel(spawn_error_timer_);
        for (UniqueFd *fd : {&stdin_, &stdout_, &stderr_, &talkback_}) {
            if (fd->valid()) loop_.Unwatch(fd->get());
        }
        if (pid_ > 0 && !exited_) {
            // Stopped before it finished: kill the whole group; the reaper
            // still collects the zombie.
            kill(-pid_, SIGKILL);
            reaper_.Forget(pid_);
        }
    }

  private:
    void Spawn(const ClaimedJob &job) {
        int in[2], out[2], err[2];
        if (pipe2(in, O_CLOEXEC) != 0) return SpawnFailed(errno);
        UniqueFd in_r(in[0]), in_w(in[1]);
        if (pipe2(out, O_CLOEXEC) != 0) return SpawnFailed(errno);
        UniqueFd out_r(out[0]), out_w(out[1]);
        if (pipe2(err, O_CLOEXEC) != 0) return SpawnFailed(errno);
        UniqueFd err_r(err[0]), err_w(err[1]);
        int talk[2];
        if (pipe2(talk, O_CLOEXEC) != 0) return SpawnFailed(errno);
        UniqueFd talk_r(talk[0]), talk_w(talk[1]);

        std::vector<std::string> env_strings;
        for (char **e = environ; *e; ++e) {
            std::string_view entry(*e);
            if (entry.rfind("JOBQ_JOB_ID=", 0) == 0 || entry.rfind("JOBQ_ATTEMPT=", 0) == 0 ||
                entry.rfind("JOBQ_QUEUE=", 0) == 0 || entry.rfind("JOBQ_LEASE_TOKEN=", 0) == 0 ||
                entry.rfind("JOBQ_TALKBACK_FD=", 0) == 0)
                continue;
            env_strings.emplace_back(entry);
        }
        env_strings.push_back(fmt::format("JOBQ_TALKBACK_FD={}", kTalkbackFd));
        env_strings.push_back(fmt::format("JOBQ_JOB_ID={}", job.id));
        env_strings.push_back(fmt::format("JOBQ_ATTEMPT={}", job.attempt));
        env_strings.push_back(fmt::format("JOBQ_QUEUE={}", job.queue));
        // id + lease token name this execution uniquely (a retry has a new token).
        env_strings.push_back(fmt::format("JOBQ_LEASE_TOKEN={}", job.token));
        std::vector<char *> envp = ExecArray(env_strings);
        std::vector<std::string> args = queue_.command;
        std::vector<char *> argv = ExecArray(args);

        int error = 0;
        pid_t pid = SpawnProcess(argv.data(), envp.data(), in_r.get(), out_w.get(), err_w.get(),
                                 talk_w.get(), &error);
        if (pid < 0) return SpawnFailed(error);
        pid_ = pid;
        started_ = EventLoop::Now();

        stdin_ = std::move(in_w);
        stdout_ = std::move(out_r);
        stderr_ = std::move(err_r);
        talkback_ = std::move(talk_r);
        SetNonBlocking(talkback_.get());
        loop_.Watch(talkback_.get(), EPOLLIN, [this](uint32_t) { ReadTalkback(); });
        SetNonBlocking(stdin_.get());
        SetNonBlocking(stdout_.get());
        SetNonBlocking(stderr_.get());
        reaper_.Add(pid_, [this](int status) { OnExit(status); });
        loop_.Watch(stdin_.get(), EPOLLOUT, [this](uint32_t) { WriteInput(); });
        loop_.Watch(stdout_.get(), EPOLLIN, [this](uint32_t) { ReadPipe(stdout_, true); });
        loop_.Watch(stderr_.get(), EPOLLIN, [this](uint32_t) { ReadPipe(stderr_, false); });
        timeout_timer_ = loop_.After(queue_.timeout, [this] { OnTimeout(); });
    }

    void SpawnFailed(int error) {
        std::string message =
            fmt::format("cannot start {}: {}", queue_.command[0], std::strerror(error));
        // Never call done from inside Start.
        spawn_error_timer_ = loop_.After(Millis(0), [this, message] {
            spawn_error_timer_ = 0;
            Outcome outcome;
            outcome.kind = OutcomeKind::kFail;
            outcome.error = message;
            Report(std::move(outcome));
        });
    }

    void WriteInput() {
        while (written_ < input_.size()) {
            ssize_t n = write(stdin_.get(), input_.data() + written_, input_.size() - written_);
            if (n > 0) {
                written_ += static_cast<size_t>(n);
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && errno == EAGAIN) return;
            break;  // EPIPE: the command does not read its input; fine.
        }
        loop_.Unwatch(stdin_.get());
        stdin_.Reset();
    }

    // Returns false at EOF or error (the pipe is closed then).
    bool ReadPipe(UniqueFd &fd, bool is_stdout) {
        char buf[16384];
        for (;;) {
            ssize_t n = read(fd.get(), buf, sizeof buf);
            if (n > 0) {
                if (is_stdout) {
                    size_t room = queue_.max_output > stdout_text_.size()
                                      ? queue_.max_output - stdout_text_.size()
                                      : 0;
                    if (static_cast<size_t>(n) > room) stdout_truncated_ = true;
                    stdout_text_.append(buf, std::min(room, static_cast<size_t>(n)));
                } else {
                    stderr_text_.append(buf, static_cast<size_t>(n));
                    if (stderr_text_.size() > 2 * kStderrTail)
                        stderr_text_.erase(0, stderr_text_.size() - kStderrTail);
                }
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && errno == EAGAIN) return true;
            loop_.Unwatch(fd.get());
            fd.Reset();
            return false;
        }
    }

    void OnTimeout() {
        timeout_timer_ = 0;
        timed_out_ = true;
        kill(-pid_, SIGTERM);
        kill_timer_ = loop_.After(queue_.kill_grace, [this] {
            kill_timer_ = 0;
            kill(-pid_, SIGKILL);
        });
    }

    void OnExit(int status) {
        exited_ = true;
        loop_.Cancel(timeout_timer_);
        loop_.Cancel(kill_timer_);
        // Output written just before exit is still in the pipes; anything
        // still holding them open was killed with the group by the reaper.
        if (stdout_.valid()) ReadPipe(stdout_, true);
        if (stderr_.valid()) ReadPipe(stderr_, false);
        if (talkback_.valid()) ReadTalkback();
        for (UniqueFd *fd : {&stdin_, &stdout_, &stderr_, &talkback_}) {
            if (fd->valid()) {
                loop_.Unwatch(fd->get());
                fd->Reset();
            }
        }
        if (dropped_logs_ > 0)
            Log(LogLevel::kWarn, "exec talk-back log lines dropped",
                {{"job", std::to_string(job_id_)}, {"dropped", std::to_string(dropped_logs_)}});
        std::string tail = stderr_text_.size() > kStderrTail
                               ? stderr_text_.substr(stderr_text_.size() - kStderrTail)
                               : stderr_text_;
        Outcome outcome =
            ExecOutcome(queue_, status, timed_out_, stdout_text_, stdout_truncated_, tail);
        if (sleep_ && outcome.kind == OutcomeKind::kComplete) {
            // It asked to sleep and exited 0: the job sleeps instead.
            outcome = Outcome{};
            outcome.kind = OutcomeKind::kSleep;
            outcome.sleep_for = sleep_->sleep_for;
            outcome.state = sleep_->state;
        }
        Report(std::move(outcome));
    }

    // Lines on the talk-back channel (docs/runner.md, "exec").
    void ReadTalkback() {
        char buf[16384];
        size_t limit = queue_.max_output + 64 * 1024;
        for (;;) {
            ssize_t n = read(talkback_.get(), buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && errno == EAGAIN) return;
            if (n <= 0) {
                loop_.Unwatch(talkback_.get());
                talkback_.Reset();
                return;
            }
            for (ssize_t i = 0; i < n; ++i) {
                if (buf[i] != '\n') {
                    if (talk_line_.size() < limit)
                        talk_line_ += buf[i];
                    else
                        talk_overflow_ = true;
                    continue;
                }
                if (talk_overflow_)
                    Log(LogLevel::kWarn, "exec talk-back line over the size limit; ignored",
                        {{"job", std::to_string(job_id_)}});
                else if (!talk_line_.empty())
                    HandleTalkback(talk_line_);
                talk_line_.clear();
                talk_overflow_ = false;
            }
        }
    }

    void HandleTalkback(std::string_view line) {
        ParsedLine parsed = ParseChildLine(line, job_id_);
        std::string job = std::to_string(job_id_);
        if (!parsed.message) {
            Log(LogLevel::kWarn, "exec talk-back line ignored",
                {{"job", job}, {"error", parsed.error}});
            return;
        }
        ChildMessage &m = *parsed.message;
        switch (m.type) {
            case ChildMessageType::kProgress:
                if (progress_) progress_(m.progress, m.state);
                return;
            case ChildMessageType::kSleep:
                sleep_ = std::move(m);
                return;
            case ChildMessageType::kLog:
                if (++log_lines_ > kTalkbackLogLines) {
                    ++dropped_logs_;
                    return;
                }
                Log(m.level == "error"   ? LogLevel::kError
                    : m.level == "warn"  ? LogLevel::kWarn
                    : m.level == "debug" ? LogLevel::kDebug
                                         : LogLevel::kNotice,
                    m.message, {{"job", job}, {"queue", queue_.name}});
                return;
            default:
                Log(LogLevel::kWarn,
                    "exec talk-back line ignored: only progress, sleep and log; the exit status "
                    "ends the job",
                    {{"job", job}});
                return;
        }
    }

    void Report(Outcome outcome) {
        DoneCallback done = std::move(done_);
        done_ = nullptr;
        if (done) done(std::move(outcome));  // may destroy *this: nothing after
    }

    EventLoop &loop_;
    ChildReaper &reaper_;
    const QueueConfig &queue_;
    DoneCallback done_;
    ProgressCallback progress_;
    std::string input_;
    int64_t job_id_;
    UniqueFd talkback_;
    std::string talk_line_;
    bool talk_overflow_ = false;
    std::optional<ChildMessage> sleep_;  // the last sleep line, applied on exit 0
    int log_lines_ = 0;
    uint64_t dropped_logs_ = 0;
    size_t written_ = 0;
    pid_t pid_ = -1;
    bool exited_ = false;
    bool timed_out_ = false;
    TimePoint started_;
    UniqueFd stdin_, stdout_, stderr_;
    std::string stdout_text_, stderr_text_;
    bool stdout_truncated_ = false;
    EventLoop::TimerId timeout_timer_ = 0, kill_timer_ = 0, spawn_error_timer_ = 0;
};

}  // namespace

std::vector<char *> ExecArray(std::vector<std::string> &strings) {
    std::vector<char *> pointers;
    pointers.reserve(strings.size() + 1);
    for (auto &s : strings) pointers.push_back(s.data());
    pointers.push_back(nullptr);
    return pointers;
}

pid_t SpawnProcess(char **argv, char **envp, int stdin_fd, int stdout_fd, int stderr_fd,
                   int talkback_fd, int *error) {
    SpawnRequest request{stdin_fd, stdout_fd, stderr_fd, talkback_fd, argv, envp, getpid(), 0};
    pid_t pid = SpawnChild(&request);
    if (pid < 0) {
        *error = errno;
        return -1;
    }
    // Parent: the group exists at once (no race with an early kill).
    setpgid(pid, pid);
    if (request.exec_error != 0) {
        int status;
        waitpid(pid, &status, 0);
        *error = request.exec_error;
        return -1;
    }
    return pid;
}

void ChildReaper::Forget(pid_t pid) {
    auto it = children_.find(pid);
    if (it != children_.end()) it->second = nullptr;
}

void ChildReaper::ReapAll() {
    for (;;) {
        siginfo_t info{};
        // WNOWAIT first: while the leader is an unreaped zombie its pid (the
        // group id) cannot be reused, so killing the group is safe.
        if (waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid == 0) return;
        pid_t pid = info.si_pid;
        if (children_.count(pid)) kill(-pid, SIGKILL);
        int status = 0;
        if (waitpid(pid, &status, 0) < 0) return;
        auto it = children_.find(pid);
        if (it == children_.end()) continue;
        ExitCallback callback = std::move(it->second);
        children_.erase(it);
        if (callback) callback(status);
    }
}

Outcome ExecOutcome(const QueueConfig &queue, int wait_status, bool timed_out,
                    const std::string &stdout_text, bool stdout_truncated,
                    const std::string &stderr_tail) {
    Outcome o;
    std::string err = TrimSpace(SanitizeText(stderr_tail));
    auto with_stderr = [&](std::string head) { return err.empty() ? head : head + ": " + err; };
    if (timed_out) {
        o.kind = OutcomeKind::kFail;
        o.error = with_stderr(fmt::format("timed out after {}", FormatDuration(queue.timeout)));
        return o;
    }
    if (WIFSIGNALED(wait_status)) {
        int sig = WTERMSIG(wait_status);
        o.kind = OutcomeKind::kFail;
        const char *name = sigabbrev_np(sig);
        o.error = with_stderr(fmt::format("killed by signal {} (SIG{})", sig, name ? name : "?"));
        return o;
    }
    int code = WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : -1;
    if (code == 0) {
        o.kind = OutcomeKind::kComplete;
        std::string trimmed = TrimSpace(stdout_text);
        if (trimmed.empty()) return o;
        o.result = (!stdout_truncated && IsJsonbSafe(trimmed)) ? trimmed : JsonQuote(trimmed);
        return o;
    }
    if (code == queue.retry_exit_code) {
        o.kind = OutcomeKind::kRetry;
        o.error = with_stderr(fmt::format("exit status {} (retry requested)", code));
    } else if (code == queue.discard_exit_code) {
        o.kind = OutcomeKind::kDiscard;
        o.error = with_stderr(fmt::format("exit status {} (discarded)", code));
    } else {
        o.kind = OutcomeKind::kFail;
        o.error = with_stderr(fmt::format("exit status {}", code));
    }
    return o;
}

std::string ExecDocument(const ClaimedJob &job) {
    std::string doc = JobDocument(job);
    doc.pop_back();  // the closing brace
    // jsonb output from the server: valid JSON already.
    return fmt::format("{},\"state\":{},\"progress\":{}}}", doc, job.saved_state.value_or("null"),
                       job.progress.value_or("null"));
}

std::unique_ptr<Execution> StartExec(EventLoop &loop, ChildReaper &reaper, const QueueConfig &queue,
                                     const ClaimedJob &job, DoneCallback done,
                                     ProgressCallback progress) {
    return std::make_unique<ExecExecution>(loop, reaper, queue, job, std::move(done),
                                           std::move(progress));
}

}  // namespace jobq
