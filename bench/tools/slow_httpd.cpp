// slow_httpd: a loopback HTTP/1.1 server for benchmarks W6 and W4h. Every
// request (headers plus a Content-Length body) is answered "200 ok" after a
// fixed delay; connections are kept alive. One thread, epoll, no
// dependencies.
//
//   slow_httpd PORT DELAY_MS [PORT_FILE [STAMP_FILE]]
//
// PORT 0 picks a free port; the port actually bound is written to PORT_FILE
// (or stdout). Listens on 127.0.0.1 only. With STAMP_FILE, each request whose
// webhook-id header is jobq-runner's "job_<id>" appends "<id> <ns>" there:
// the wall-clock time (CLOCK_REALTIME, the clock the producer and Postgres
// use) the request arrived, i.e. the handler's start. Exits on
// SIGTERM/SIGINT, printing to stderr "requests N first_ns F last_ns L": the
// wall-clock times the first and the last request arrived.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>
#include <unordered_map>

namespace {

using Clock = std::chrono::steady_clock;

struct Conn {
    std::string in;
    std::string out;
    size_t out_off = 0;
    int pending = 0;  // requests parsed, answer not yet due
    bool stamped = false;  // the request being read has been stamped
};

struct Due {
    Clock::time_point at;
    int fd;
    unsigned long gen;
};

volatile sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

long long WallNs() {
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<long long>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

const char kReply[] =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok";

}  // namespace

int main(int argc, char **argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: slow_httpd PORT DELAY_MS [PORT_FILE [STAMP_FILE]]\n");
        return 2;
    }
    int port = std::atoi(argv[1]);
    auto delay = std::chrono::milliseconds(std::atoi(argv[2]));
    rlimit lim{};
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0) {
        lim.rlim_cur = lim.rlim_max;
        setrlimit(RLIMIT_NOFILE, &lim);
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, OnSignal);
    signal(SIGINT, OnSignal);

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0 || listen(lfd, 65535) != 0) {
        std::perror("slow_httpd: bind/listen");
        return 1;
    }
    socklen_t len = sizeof addr;
    getsockname(lfd, reinterpret_cast<sockaddr *>(&addr), &len);
    int bound = ntohs(addr.sin_port);
    if (argc > 3) {
        FILE *f = std::fopen(argv[3], "w");
        if (!f) return 1;
        std::fprintf(f, "%d\n", bound);
        std::fclose(f);
    } else {
        std::printf("%d\n", bound);
        std::fflush(stdout);
    }

    int stamp_fd = -1;
    if (argc > 4) {
        stamp_fd = open(argv[4], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (stamp_fd < 0) {
            std::perror("slow_httpd: stamp file");
            return 1;
        }
    }

    int ep = epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = lfd;
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);

    std::unordered_map<int, Conn> conns;
    std::unordered_map<int, unsigned long> gens;  // fd reuse guard for the due queue
    unsigned long next_gen = 1;
    std::deque<Due> due;  // constant delay: FIFO order is deadline order
    unsigned long requests = 0;
    long long first_ns = 0, last_ns = 0;

    auto close_conn = [&](int fd) {
        epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
        close(fd);
        conns.erase(fd);
        gens.erase(fd);
    };
    auto flush = [&](int fd, Conn &c) -> bool {
        while (c.out_off < c.out.size()) {
            ssize_t n = write(fd, c.out.data() + c.out_off, c.out.size() - c.out_off);
            if (n > 0) {
                c.out_off += static_cast<size_t>(n);
            } else if (n < 0 && errno == EAGAIN) {
                epoll_event w{};
                w.events = EPOLLIN | EPOLLOUT;
                w.data.fd = fd;
                epoll_ctl(ep, EPOLL_CTL_MOD, fd, &w);
                return true;
            } else {
                return false;
            }
        }
        c.out.clear();
        c.out_off = 0;
        return true;
    };
    // Parses complete requests in c.in; each schedules one answer.
    auto parse = [&](int fd, Conn &c) {
        for (;;) {
            size_t end = c.in.find("\r\n\r\n");
            if (end == std::string::npos) return;
            size_t body = 0;
            long long job = -1;
            for (size_t p = 0; p < end;) {
                size_t eol = c.in.find("\r\n", p);
                if (eol == std::string::npos || eol > end) eol = end;
                if (eol - p > 15 && strncasecmp(c.in.data() + p, "content-length:", 15) == 0)
                    body = std::strtoul(c.in.c_str() + p + 15, nullptr, 10);
                if (eol - p > 16 && strncasecmp(c.in.data() + p, "webhook-id: job_", 16) == 0)
                    job = std::strtoll(c.in.c_str() + p + 16, nullptr, 10);
                p = eol + 2;
            }
            if (stamp_fd >= 0 && job >= 0 && !c.stamped) {
                // At the headers: the body (the job document) is the handler's input.
                char line[64];
                int n = std::snprintf(line, sizeof line, "%lld %lld\n", job, WallNs());
                if (write(stamp_fd, line, static_cast<size_t>(n)) != n) std::perror("slow_httpd: stamp");
                c.stamped = true;
            }
            if (c.in.size() < end + 4 + body) return;
            c.stamped = false;
            c.in.erase(0, end + 4 + body);
            c.pending++;
            requests++;
            last_ns = WallNs();
            if (first_ns == 0) first_ns = last_ns;
            due.push_back(Due{Clock::now() + delay, fd, gens[fd]});
        }
    };

    epoll_event events[1024];
    while (!g_stop) {
        int timeout = -1;
        if (!due.empty()) {
            auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(due.front().at - Clock::now()).count();
            timeout = ms < 0 ? 0 : static_cast<int>(ms) + 1;
        }
        int n = epoll_wait(ep, events, 1024, timeout);
        for (int i = 0; i < n; ++i) {
            int fd = events[i].data.fd;
            if (fd == lfd) {
                for (;;) {
                    int c = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (c < 0) break;
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    epoll_event e{};
                    e.events = EPOLLIN;
                    e.data.fd = c;
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &e);
                    conns[c] = Conn{};
                    gens[c] = next_gen++;
                }
                continue;
            }
            auto it = conns.find(fd);
            if (it == conns.end()) continue;
            Conn &c = it->second;
            if (events[i].events & EPOLLOUT) {
                if (!flush(fd, c)) { close_conn(fd); continue; }
                if (c.out.empty()) {
                    epoll_event e{};
                    e.events = EPOLLIN;
                    e.data.fd = fd;
                    epoll_ctl(ep, EPOLL_CTL_MOD, fd, &e);
                }
            }
            if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                char buf[16384];
                bool closed = false;
                for (;;) {
                    ssize_t r = read(fd, buf, sizeof buf);
                    if (r > 0) { c.in.append(buf, static_cast<size_t>(r)); continue; }
                    if (r == 0 || errno != EAGAIN) closed = true;
                    break;
                }
                parse(fd, c);
                if (closed) close_conn(fd);
            }
        }
        auto now = Clock::now();
        while (!due.empty() && due.front().at <= now) {
            Due d = due.front();
            due.pop_front();
            auto it = conns.find(d.fd);
            if (it == conns.end() || gens[d.fd] != d.gen) continue;
            Conn &c = it->second;
            c.pending--;
            c.out.append(kReply, sizeof kReply - 1);
            if (!flush(d.fd, c)) close_conn(d.fd);
        }
    }
    std::fprintf(stderr, "requests %lu first_ns %lld last_ns %lld\n", requests, first_ns, last_ns);
    return 0;
}
