// slow_http_server: a benchmark receiver that answers every request after a
// fixed delay, to measure how many HTTP jobs the runner keeps in flight.
//
// Usage: slow_http_server PORT DELAY_MS
// Binds 127.0.0.1 only. Reads one request (head + Content-Length body),
// waits DELAY_MS on the same event loop the runner uses, answers
// `200 {"ok":true}` with `Connection: close`. Prints the number of answered
// requests (and over how long they arrived) on SIGTERM/SIGINT. Not a general server: benchmark use
// only.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>

#include "event_loop.h"
#include "unique_fd.h"

namespace {

struct Conn {
    jobq::UniqueFd fd;
    std::string in;
    std::string out;
    size_t sent = 0;
    bool answered = false;
};

}  // namespace

int main(int argc, char **argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s PORT DELAY_MS\n", argv[0]);
        return 2;
    }
    int port = std::atoi(argv[1]);
    std::chrono::milliseconds delay(std::atoi(argv[2]));
    rlimit limit{};
    getrlimit(RLIMIT_NOFILE, &limit);
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);

    jobq::EventLoop loop;
    jobq::UniqueFd listener(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    int one = 1;
    setsockopt(listener.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listener.get(), reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0 ||
        listen(listener.get(), 65535) != 0) {
        std::perror("listen");
        return 1;
    }
    std::map<int, std::unique_ptr<Conn>> conns;
    long answered = 0;
    long received = 0;
    jobq::TimePoint first_request{}, last_request{};

    auto close_conn = [&](int fd) {
        loop.Unwatch(fd);
        conns.erase(fd);
    };
    std::function<void(int, uint32_t)> on_conn = [&](int fd, uint32_t events) {
        auto it = conns.find(fd);
        if (it == conns.end()) return;
        Conn &c = *it->second;
        if (c.answered) {
            while (c.sent < c.out.size()) {
                ssize_t n = send(fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
                if (n > 0) {
                    c.sent += static_cast<size_t>(n);
                } else if (n < 0 && errno == EAGAIN) {
                    return;
                } else {
                    break;
                }
            }
            if (answered++ == 0) {
                auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count() %
                          100000;
                std::fprintf(stderr, "first answer at wall %.3f (mod 100s)\n",
                             static_cast<double>(ms) / 1000.0);
            }
            close_conn(fd);
            return;
        }
        if (!(events & EPOLLIN)) return;
        char buf[8192];
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) {
            if (n < 0 && errno == EAGAIN) return;
            close_conn(fd);
            return;
        }
        c.in.append(buf, static_cast<size_t>(n));
        size_t end = c.in.find("\r\n\r\n");
        if (end == std::string::npos) return;
        size_t length = 0;
        size_t cl = c.in.find("Content-Length:");
        if (cl == std::string::npos) cl = c.in.find("content-length:");
        if (cl != std::string::npos && cl < end)
            length = std::strtoul(c.in.c_str() + cl + 15, nullptr, 10);
        if (c.in.size() < end + 4 + length) return;
        last_request = jobq::EventLoop::Now();
        if (received++ == 0) {
            first_request = last_request;
            auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count() %
                      100000;
            std::fprintf(stderr, "first request at wall %.3f (mod 100s)\n",
                         static_cast<double>(ms) / 1000.0);
        }
        loop.Modify(fd, 0);  // nothing to do until the delay passes
        loop.After(delay, [&, fd] {
            auto again = conns.find(fd);
            if (again == conns.end()) return;
            Conn &d = *again->second;
            d.answered = true;
            d.out =
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n"
                "Connection: close\r\n\r\n{\"ok\":true}";
            loop.Modify(fd, EPOLLOUT);
        });
    };
    loop.Watch(listener.get(), EPOLLIN, [&](uint32_t) {
        for (;;) {
            int fd = accept4(listener.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) return;
            auto c = std::make_unique<Conn>();
            c->fd.Reset(fd);
            conns[fd] = std::move(c);
            loop.Watch(fd, EPOLLIN, [&, fd](uint32_t ev) { on_conn(fd, ev); });
        }
    });

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, nullptr);
    jobq::UniqueFd sfd(signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
    loop.Watch(sfd.get(), EPOLLIN, [&](uint32_t) { loop.Stop(); });
    std::fprintf(stderr, "slow_http_server: 127.0.0.1:%d, delay %lldms\n", port,
                 static_cast<long long>(delay.count()));
    loop.Run();
    double spread = std::chrono::duration<double>(last_request - first_request).count();
    std::printf("received %ld, answered %ld, requests arrived over %.3fs\n", received, answered,
                spread);
    return 0;
}
