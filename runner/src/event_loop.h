// The one event loop: epoll for file descriptors, a timer queue, and
// end-of-tick hooks.
//
// Vocabulary: a *watch* is an fd registered with a callback and an epoll
// event mask; a *timer* fires once at a steady-clock deadline; a *tick* is
// one epoll_wait plus the callbacks it triggered, after which the tick hooks
// run (the settler uses one to send every settle of the tick in one round
// trip). Callbacks may add or remove watches and timers, including their
// own: stale events for an fd that was removed (and maybe reused) in the
// same tick are dropped by a generation check.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <unordered_map>
#include <vector>

#include "unique_fd.h"

namespace jobq {

using SteadyClock = std::chrono::steady_clock;
using TimePoint = SteadyClock::time_point;

class EventLoop {
  public:
    using FdCallback = std::function<void(uint32_t events)>;
    using TimerId = uint64_t;

    EventLoop();

    // Adds or replaces the watch on fd.
    void Watch(int fd, uint32_t events, FdCallback callback);
    // Changes the event mask of an existing watch.
    void Modify(int fd, uint32_t events);
    void Unwatch(int fd);
    bool Watching(int fd) const { return watches_.count(fd) != 0; }

    TimerId At(TimePoint when, std::function<void()> callback);
    TimerId After(std::chrono::milliseconds delay, std::function<void()> callback);
    // Cancels the timer (if still pending) and zeroes the id.
    void Cancel(TimerId &id);

    void AddTickHook(std::function<void()> hook) { tick_hooks_.push_back(std::move(hook)); }

    // Runs ticks until Stop().
    void Run();
    void Stop() { stopped_ = true; }

    static TimePoint Now() { return SteadyClock::now(); }

  private:
    struct WatchEntry {
        uint32_t generation;
        uint32_t events;
        FdCallback callback;
    };

    void RunDueTimers();
    int WaitTimeoutMs() const;

    UniqueFd epoll_;
    uint32_t next_generation_ = 1;
    std::unordered_map<int, std::shared_ptr<WatchEntry>> watches_;
    TimerId next_timer_ = 1;
    std::map<std::pair<TimePoint, TimerId>, std::function<void()>> timers_;
    std::unordered_map<TimerId, TimePoint> timer_deadlines_;
    std::vector<std::function<void()>> tick_hooks_;
    bool stopped_ = false;
};

}  // namespace jobq
