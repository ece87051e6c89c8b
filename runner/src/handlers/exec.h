// The `exec` handler: runs a configured argv (no shell) per job.
//
// Vocabulary: the *child* is the spawned process, leader of its own process
// group (so a timeout or a stop reaches everything it started); the *reaper*
// turns SIGCHLD (delivered through the runner's signalfd) into per-child
// exit callbacks. Contract with the command:
//   stdin   the job document {"id","queue","attempt","payload"}
//   env     JOBQ_JOB_ID, JOBQ_ATTEMPT, JOBQ_QUEUE, JOBQ_LEASE_TOKEN (id and
//           token together name one execution), plus the runner's own
//   stdout  the result (capped at max_output), kept as JSON when it parses
//   stderr  its tail (4 KiB) becomes the error of a failed attempt
//   exit 0 completes; retry_exit_code (75, EX_TEMPFAIL) retries;
//   discard_exit_code (65, EX_DATAERR) moves the job to dead at once; any
//   other exit or a signal fails the attempt (retried with backoff).
// talk-back  fd 3 (JOBQ_TALKBACK_FD): JSON lines of the worker protocol
//           (handlers/worker_protocol.h) without "id": progress and log at
//           any time; sleep, which takes effect if the command exits 0. The
//           stdin document then also carries "state" and "progress".
// Timeout: SIGTERM to the process group, SIGKILL after kill_grace. When the
// child exits, whatever is left in its process group is killed: no orphans.
// If the runner itself dies, the child gets SIGKILL (PR_SET_PDEATHSIG).
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "config.h"
#include "event_loop.h"
#include "job.h"

namespace jobq {

class ChildReaper {
  public:
    using ExitCallback = std::function<void(int wait_status)>;
    void Add(pid_t pid, ExitCallback callback) { children_[pid] = std::move(callback); }
    // The child is still reaped, but nobody is told.
    void Forget(pid_t pid);
    // Reaps every exited child; call on SIGCHLD.
    void ReapAll();
    size_t size() const { return children_.size(); }

  private:
    std::unordered_map<pid_t, ExitCallback> children_;
};

// Starts argv (argv[0] an absolute path) with the given fds as its stdin,
// stdout and stderr, as the leader of its own process group, killed if the
// runner dies (see exec.cpp). Returns the pid, or -1 with *error set to
// the errno of the failed fork or exec. Used by the worker handler too.
// talkback_fd (-1: none) becomes the command's fd 3.
pid_t SpawnProcess(char **argv, char **envp, int stdin_fd, int stdout_fd, int stderr_fd,
                   int talkback_fd, int *error);

// The NULL-terminated array of pointers into `strings` that exec wants as
// argv or envp (valid while `strings` lives and is not changed).
std::vector<char *> ExecArray(std::vector<std::string> &strings);

// Progress and/or state (JSON text) a command reported on its talk-back fd.
using ProgressCallback =
    std::function<void(std::optional<std::string> progress, std::optional<std::string> state)>;

std::unique_ptr<Execution> StartExec(EventLoop &loop, ChildReaper &reaper, const QueueConfig &queue,
                                     const ClaimedJob &job, DoneCallback done,
                                     ProgressCallback progress = nullptr);

// The document on the command's stdin: the job document plus "state" and
// "progress" an earlier run left (null when none).
std::string ExecDocument(const ClaimedJob &job);

// Decides an exec outcome from how the child ended (pure; unit-tested).
Outcome ExecOutcome(const QueueConfig &queue, int wait_status, bool timed_out,
                    const std::string &stdout_text, bool stdout_truncated,
                    const std::string &stderr_tail);

}  // namespace jobq
