// epoll loop (see event_loop.h). Level-triggered throughout: simpler to get
// right with libpq and libcurl, and a callback that reads only part of its
// input is called again next tick instead of stalling.
#include "event_loop.h"

#include <sys/epoll.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace jobq {

EventLoop::EventLoop() : epoll_(epoll_create1(EPOLL_CLOEXEC)) {
    if (!epoll_.valid())
        throw std::runtime_error(std::string("epoll_create1: ") + std::strerror(errno));
}

void EventLoop::Watch(int fd, uint32_t events, FdCallback callback) {
    auto entry =
        std::make_shared<WatchEntry>(WatchEntry{next_generation_++, events, std::move(callback)});
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = (static_cast<uint64_t>(entry->generation) << 32) | static_cast<uint32_t>(fd);
    int op = watches_.count(fd) ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(epoll_.get(), op, fd, &ev) != 0) {
        // The fd may have been closed and reused behind our back (libcurl,
        // libpq reconnects): fall back to the other operation once.
        op = op == EPOLL_CTL_ADD ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
        if (epoll_ctl(epoll_.get(), op, fd, &ev) != 0) {
            throw std::runtime_error(std::string("epoll_ctl: ") + std::strerror(errno));
        }
    }
    watches_[fd] = std::move(entry);
}

void EventLoop::Modify(int fd, uint32_t events) {
    auto it = watches_.find(fd);
    if (it == watches_.end() || it->second->events == events) return;
    it->second->events = events;
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = (static_cast<uint64_t>(it->second->generation) << 32) | static_cast<uint32_t>(fd);
    if (epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev) != 0) {
        throw std::runtime_error(std::string("epoll_ctl(MOD): ") + std::strerror(errno));
    }
}

void EventLoop::Unwatch(int fd) {
    if (watches_.erase(fd) == 0) return;
    // Fails harmlessly when the fd is already closed (epoll dropped it).
    epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
}

EventLoop::TimerId EventLoop::At(TimePoint when, std::function<void()> callback) {
    TimerId id = next_timer_++;
    timers_.emplace(std::make_pair(when, id), std::move(callback));
    timer_deadlines_.emplace(id, when);
    return id;
}

EventLoop::TimerId EventLoop::After(std::chrono::milliseconds delay,
                                    std::function<void()> callback) {
    return At(Now() + delay, std::move(callback));
}

void EventLoop::Cancel(TimerId &id) {
    if (id == 0) return;
    auto it = timer_deadlines_.find(id);
    if (it != timer_deadlines_.end()) {
        timers_.erase(std::make_pair(it->second, id));
        timer_deadlines_.erase(it);
    }
    id = 0;
}

int EventLoop::WaitTimeoutMs() const {
    if (timers_.empty()) return 60'000;
    auto delta = timers_.begin()->first.first - Now();
    if (delta <= SteadyClock::duration::zero()) return 0;
    // Round up so we never wake a hair early and spin.
    auto ms = std::chrono::ceil<std::chrono::milliseconds>(delta).count();
    return static_cast<int>(std::min<long long>(ms, 60'000));
}

void EventLoop::RunDueTimers() {
    TimePoint now = Now();
    while (!timers_.empty() && timers_.begin()->first.first <= now) {
        auto node = timers_.extract(timers_.begin());
        timer_deadlines_.erase(node.key().second);
        node.mapped()();
    }
}

void EventLoop::Run() {
    constexpr int kMaxEvents = 256;
    epoll_event events[kMaxEvents];
    while (!stopped_) {
        int n = epoll_wait(epoll_.get(), events, kMaxEvents, WaitTimeoutMs());
        if (n < 0) {
            if (errno == EINTR) continue;
            throw std::runtime_error(std::string("epoll_wait: ") + std::strerror(errno));
        }
        for (int i = 0; i < n && !stopped_; ++i) {
            int fd = static_cast<int>(events[i].data.u64 & 0xffffffffu);
            uint32_t generation = static_cast<uint32_t>(events[i].data.u64 >> 32);
            auto it = watches_.find(fd);
            if (it == watches_.end() || it->second->generation != generation) continue;
            std::shared_ptr<WatchEntry> keep = it->second;
            keep->callback(events[i].events);
        }
        if (!stopped_) RunDueTimers();
        for (auto &hook : tick_hooks_) {
            if (stopped_) break;
            hook();
        }
    }
}

}  // namespace jobq
