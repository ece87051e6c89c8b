// Minimal HTTP/1.1 responder (see metrics_server.h).
#include "metrics_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

#include "duration.h"

namespace jobq {
namespace {
constexpr size_t kMaxHead = 8192;
constexpr Millis kClientTimeout{5000};

const char *Reason(int status) {
    switch (status) {
        case 200:
            return "OK";
        case 400:
            return "Bad Request";
        case 404:
            return "Not Found";
        case 405:
            return "Method Not Allowed";
        case 431:
            return "Request Header Fields Too Large";
        case 503:
            return "Service Unavailable";
        case 505:
            return "HTTP Version Not Supported";
        default:
            return "Unknown";
    }
}
}  // namespace

struct MetricsServer::Client {
    UniqueFd fd;
    std::string in;
    std::string out;
    size_t sent = 0;
    bool responding = false;
    EventLoop::TimerId timer = 0;
};

int ParseRequestHead(const std::string &head, std::string *method, std::string *path) {
    size_t eol = head.find("\r\n");
    std::string line = head.substr(0, eol);
    size_t sp1 = line.find(' ');
    size_t sp2 = line.rfind(' ');
    if (sp1 == std::string::npos || sp2 == sp1) return 400;
    *method = line.substr(0, sp1);
    std::string target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    std::string version = line.substr(sp2 + 1);
    if (version != "HTTP/1.1" && version != "HTTP/1.0")
        return version.rfind("HTTP/", 0) == 0 ? 505 : 400;
    if (target.empty() || target[0] != '/') return 400;
    *path = target.substr(0, target.find('?'));
    return 0;
}

MetricsServer::MetricsServer(EventLoop &loop, Route route)
    : loop_(loop), route_(std::move(route)) {}

MetricsServer::~MetricsServer() {
    while (!clients_.empty()) Close(clients_.begin()->first);
    if (listener_.valid()) loop_.Unwatch(listener_.get());
}

void MetricsServer::Listen(const std::string &host, int port) {
    listener_.Reset(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!listener_.valid())
        throw std::runtime_error(fmt::format("http.listen: socket: {}", std::strerror(errno)));
    int one = 1;
    setsockopt(listener_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
    if (bind(listener_.get(), reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0 ||
        listen(listener_.get(), 64) != 0) {
        throw std::runtime_error(fmt::format("http.listen: cannot listen on {}:{}: {}", host, port,
                                             std::strerror(errno)));
    }
    socklen_t len = sizeof addr;
    getsockname(listener_.get(), reinterpret_cast<sockaddr *>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    loop_.Watch(listener_.get(), EPOLLIN, [this](uint32_t) { Accept(); });
}

void MetricsServer::Accept() {
    for (;;) {
        int fd = accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                // Level-triggered: the pending connection would wake us at
                // once forever. Stop listening for a second instead.
                loop_.Unwatch(listener_.get());
                loop_.After(Millis(1000), [this] {
                    loop_.Watch(listener_.get(), EPOLLIN, [this](uint32_t) { Accept(); });
                });
            }
            return;
        }
        auto client = std::make_unique<Client>();
        client->fd.Reset(fd);
        client->timer = loop_.After(kClientTimeout, [this, fd] {
            auto it = clients_.find(fd);
            if (it != clients_.end()) it->second->timer = 0;
            Close(fd);
        });
        clients_[fd] = std::move(client);
        loop_.Watch(fd, EPOLLIN, [this, fd](uint32_t ev) { OnClient(fd, ev); });
    }
}

void MetricsServer::OnClient(int fd, uint32_t events) {
    auto it = clients_.find(fd);
    if (it == clients_.end()) return;
    Client &c = *it->second;
    if (!c.responding) {
        char buf[4096];
        ssize_t n = read(fd, buf, sizeof buf);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return Close(fd);
        if (n > 0) c.in.append(buf, static_cast<size_t>(n));
        size_t end = c.in.find("\r\n\r\n");
        if (end == std::string::npos) {
            if (c.in.size() > kMaxHead) {
                c.out =
                    fmt::format("HTTP/1.1 431 {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                                Reason(431));
            } else {
                return;
            }
        } else {
            std::string method, path;
            int bad = ParseRequestHead(c.in.substr(0, end), &method, &path);
            HttpReply reply;
            if (bad) {
                reply.status = bad;
                reply.body = fmt::format("{}\n", Reason(bad));
            } else if (method != "GET" && method != "HEAD") {
                reply.status = 405;
                reply.body = "method not allowed\n";
            } else {
                reply = route_(path);
            }
            std::string extra = reply.status == 405 ? "Allow: GET, HEAD\r\n" : "";
            c.out = fmt::format(
                "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{}Connection: "
                "close\r\n\r\n",
                reply.status, Reason(reply.status), reply.content_type, reply.body.size(), extra);
            if (method != "HEAD") c.out += reply.body;
        }
        c.responding = true;
        loop_.Modify(fd, EPOLLOUT);
        return;
    }
    if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
        while (c.sent < c.out.size()) {
            ssize_t n = send(fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
            if (n > 0) {
                c.sent += static_cast<size_t>(n);
                continue;
            }
            if (n < 0 && errno == EAGAIN) return;
            break;
        }
        shutdown(fd, SHUT_WR);
        Close(fd);
    }
}

void MetricsServer::Close(int fd) {
    auto it = clients_.find(fd);
    if (it == clients_.end()) return;
    loop_.Cancel(it->second->timer);
    loop_.Unwatch(fd);
    clients_.erase(it);  // closes the fd
}

}  // namespace jobq
