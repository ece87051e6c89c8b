// The `http` handler: POSTs the job document to the queue's URL through
// libcurl's multi interface, driven by the runner's epoll loop
// (CURLMOPT_SOCKETFUNCTION / CURLMOPT_TIMERFUNCTION): thousands of
// transfers in flight on one thread.
//
// Vocabulary (Standard Webhooks): every delivery carries `webhook-id`
// ("job_<id>", stable across attempts so receivers can de-duplicate),
// `webhook-timestamp` (unix seconds) and `webhook-signature`
// ("v1,<base64 HMAC-SHA256 of id.timestamp.body>").
// Outcome by status: 2xx completes (the body, capped, is the result);
// 408, 429 and 5xx retry, after Retry-After when the server sends one;
// other 4xx discard the job (dead); a redirect is followed only to the same
// scheme, host and port (at most 5); network errors and timeouts fail the
// attempt (retried with backoff). TLS peers are always verified.
#pragma once

#include <curl/curl.h>

#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "config.h"
#include "event_loop.h"
#include "job.h"

namespace jobq {

// The process-wide multi handle and its glue to the event loop.
class CurlMulti {
  public:
    explicit CurlMulti(EventLoop &loop);
    ~CurlMulti();
    CurlMulti(const CurlMulti &) = delete;
    CurlMulti &operator=(const CurlMulti &) = delete;

    CURLM *handle() const { return multi_; }
    // Reports finished transfers to their owners.
    void CheckDone();

  private:
    static int SocketCallback(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp);
    static int TimerCallback(CURLM *multi, long timeout_ms, void *userp);
    void Action(curl_socket_t s, int flags);

    EventLoop &loop_;
    CURLM *multi_;
    EventLoop::TimerId timer_ = 0;
};

// How many CurlMulti shards to spread `max_transfers` concurrent transfers
// over. libcurl scans a multi handle's connections linearly when it opens a
// connection, and again when it returns one to a cache holding more than
// CURLMOPT_MAXCONNECTS, so thousands of transfers in one multi cost time
// quadratic in their number. Shards of at most ~128 transfers (at most 64
// shards) keep the scans short; small configurations get one shard, where
// every connection can be reused by every job.
int CurlShardCount(int max_transfers);

std::unique_ptr<Execution> StartHttp(EventLoop &loop, CurlMulti &multi, const QueueConfig &queue,
                                     const ClaimedJob &job, DoneCallback done);

// Decides an HTTP outcome from a finished response (pure; unit-tested).
Outcome HttpOutcome(long status, const std::string &body, bool body_truncated,
                    std::optional<long long> retry_after_seconds);

// True when `to` has the same scheme, host and port as `from`.
bool SameOrigin(const std::string &from, const std::string &to);

}  // namespace jobq
