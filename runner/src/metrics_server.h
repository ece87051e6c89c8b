// A minimal HTTP/1.1 server on the runner's loop for /metrics and /healthz.
//
// Vocabulary: one *exchange* per connection: read the request head (at most
// 8 KiB, 5 s), answer, close (`Connection: close`). GET and HEAD only; no
// bodies, no keep-alive, no chunking: small but correct, and a slow or
// hostile client can hold one fd for 5 s at most.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "event_loop.h"
#include "unique_fd.h"

namespace jobq {

struct HttpReply {
    int status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body;
};

class MetricsServer {
  public:
    using Route = std::function<HttpReply(const std::string &path)>;

    MetricsServer(EventLoop &loop, Route route);
    ~MetricsServer();
    // Binds and listens; throws std::runtime_error naming the address.
    void Listen(const std::string &host, int port);
    int port() const { return port_; }

  private:
    struct Client;
    void Accept();
    void OnClient(int fd, uint32_t events);
    void Close(int fd);

    EventLoop &loop_;
    Route route_;
    UniqueFd listener_;
    int port_ = 0;
    std::map<int, std::unique_ptr<Client>> clients_;
};

// Parses a request head; returns the status to send on a bad request (0 when
// fine) and fills method and path (exposed for tests).
int ParseRequestHead(const std::string &head, std::string *method, std::string *path);

}  // namespace jobq
