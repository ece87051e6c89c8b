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
// Timeout: SIGTERM to the process group, SIGKILL after kill_grace. When the
// child exits, whatever is left in its process group is killed: no orphans.
// If the runner itself dies, the child gets SIGKILL (PR_SET_PDEATHSIG).
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <unordered_map>

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
pid_t SpawnProcess(char **argv, char **envp, int stdin_fd, int stdout_fd, int stderr_fd,
                   int *error);

std::unique_ptr<Execution> StartExec(EventLoop &loop, ChildReaper &reaper, const QueueConfig &queue,
                                     const ClaimedJob &job, DoneCallback done);

// Decides an exec outcome from how the child ended (pure; unit-tested).
Outcome ExecOutcome(const QueueConfig &queue, int wait_status, bool timed_out,
                    const std::string &stdout_text, bool stdout_truncated,
                    const std::string &stderr_tail);

}  // namespace jobq
