// http handler (see handlers/http.h).
#include "handlers/http.h"

#include <sys/epoll.h>

#include <algorithm>
#include <ctime>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "hmac.h"
#include "json_text.h"
#include "log.h"

namespace jobq {
namespace {

constexpr int kMaxRedirects = 5;

struct CurlUrlDeleter {
    void operator()(CURLU *u) const { curl_url_cleanup(u); }
};

std::optional<std::string> UrlPart(CURLU *url, CURLUPart part) {
    char *value = nullptr;
    if (curl_url_get(url, part, &value, part == CURLUPART_PORT ? CURLU_DEFAULT_PORT : 0) !=
        CURLUE_OK)
        return std::nullopt;
    std::string out(value);
    curl_free(value);
    return out;
}

class HttpExecution : public Execution {
  public:
    HttpExecution(EventLoop &loop, CurlMulti &multi, const QueueConfig &queue,
                  const ClaimedJob &job, DoneCallback done)
        : loop_(loop),
          multi_(multi),
          queue_(queue),
          done_(std::move(done)),
          body_(JobDocument(job)),
          webhook_id_(fmt::format("job_{}", job.id)),
          url_(queue.url) {
        Begin();
    }

    ~HttpExecution() override {
        loop_.Cancel(error_timer_);
        Cleanup();
    }

    // Called by CurlMulti when the transfer ends.
    void OnDone(CURLcode code) {
        long status = 0;
        curl_easy_getinfo(easy_, CURLINFO_RESPONSE_CODE, &status);
        if (code == CURLE_OK && status >= 300 && status < 400 && status != 304 && status != 305) {
            char *location = nullptr;
            curl_easy_getinfo(easy_, CURLINFO_REDIRECT_URL, &location);
            if (location && redirects_ < kMaxRedirects && SameOrigin(url_, location)) {
                ++redirects_;
                url_ = location;
                // 303 See Other: the POST was taken; what the location says
                // to a GET decides the outcome. POSTing again would deliver
                // the job twice. The other redirects move the endpoint.
                if (status == 303) see_other_ = true;
                Cleanup();
                Begin();
                return;
            }
            Outcome o;
            o.kind = OutcomeKind::kFail;
            o.error = location
                          ? (redirects_ >= kMaxRedirects
                                 ? fmt::format("too many redirects (last to {})", location)
                                 : fmt::format("redirect to another host refused: {}", location))
                          : fmt::format("HTTP {} without a Location", status);
            Report(std::move(o));
            return;
        }
        if (code != CURLE_OK) {
            Outcome o;
            o.kind = OutcomeKind::kFail;
            if (code == CURLE_OPERATION_TIMEDOUT) {
                o.error = fmt::format("timed out after {}", FormatDuration(queue_.timeout));
            } else if (code == CURLE_SEND_FAIL_REWIND) {
                // Our Seek refused libcurl's silent re-send (see Seek).
                o.error =
                    "connection lost after the request was sent; not re-sent in this attempt "
                    "(the receiver may have got it)";
            } else {
                o.error = errbuf_[0] ? fmt::format("{}: {}", curl_easy_strerror(code), errbuf_)
                                     : curl_easy_strerror(code);
            }
            Report(std::move(o));
            return;
        }
        curl_off_t retry_after = 0;
        std::optional<long long> retry;
        if (curl_easy_getinfo(easy_, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK &&
            retry_after > 0)
            retry = retry_after;
        Report(HttpOutcome(status, response_, truncated_, retry));
    }

  private:
    static size_t Write(char *data, size_t size, size_t nmemb, void *userp) {
        auto *self = static_cast<HttpExecution *>(userp);
        size_t n = size * nmemb;
        size_t room = self->queue_.max_output > self->response_.size()
                          ? self->queue_.max_output - self->response_.size()
                          : 0;
        if (n > room) self->truncated_ = true;
        self->response_.append(data, std::min(n, room));
        return n;  // keep reading: the status decides, not the size
    }

    // The request body, handed to libcurl by Read instead of as
    // CURLOPT_POSTFIELDS so that Seek can refuse a rewind: libcurl re-sends
    // a request by itself, up to 5 times, when a reused connection dies
    // before any response byte arrives (it takes that for a connection the
    // server had closed while idle). But a receiver may have read the whole
    // request and then crashed or reset the connection: the re-send would
    // deliver the attempt again. With the rewind refused the transfer ends
    // with CURLE_SEND_FAIL_REWIND, a failed attempt retried with backoff.
    static size_t Read(char *buffer, size_t size, size_t nitems, void *userp) {
        auto *self = static_cast<HttpExecution *>(userp);
        size_t n = std::min(size * nitems, self->body_.size() - self->body_sent_);
        std::copy_n(self->body_.data() + self->body_sent_, n, buffer);
        self->body_sent_ += n;
        return n;
    }

    static int Seek(void *userp, curl_off_t offset, int origin) {
        auto *self = static_cast<HttpExecution *>(userp);
        // Nothing of the body has left yet: starting over delivers nothing twice.
        if (origin == SEEK_SET && offset == 0 && self->body_sent_ == 0) return CURL_SEEKFUNC_OK;
        return CURL_SEEKFUNC_FAIL;
    }

    void Begin() {
        response_.clear();
        body_sent_ = 0;
        truncated_ = false;
        errbuf_[0] = '\0';
        easy_ = curl_easy_init();
        if (!easy_) return Fail("curl_easy_init failed");
        std::string timestamp = std::to_string(static_cast<long long>(std::time(nullptr)));
        std::string signature = WebhookSignature(queue_.secret_key, webhook_id_, timestamp, body_);
        for (const std::string &h :
             {std::string("Content-Type: application/json"), "webhook-id: " + webhook_id_,
              "webhook-timestamp: " + timestamp, "webhook-signature: " + signature,
              std::string("User-Agent: jobq-runner"), std::string("Expect:")}) {
            curl_slist *next = curl_slist_append(headers_, h.c_str());
            if (!next) return Fail("out of memory");
            headers_ = next;
        }
        curl_easy_setopt(easy_, CURLOPT_URL, url_.c_str());
        curl_easy_setopt(easy_, CURLOPT_PRIVATE, this);
        curl_easy_setopt(easy_, CURLOPT_HTTPHEADER, headers_);
        if (see_other_) {
            curl_easy_setopt(easy_, CURLOPT_HTTPGET, 1L);
        } else {
            curl_easy_setopt(easy_, CURLOPT_POST, 1L);
            curl_easy_setopt(easy_, CURLOPT_READFUNCTION, &HttpExecution::Read);
            curl_easy_setopt(easy_, CURLOPT_READDATA, this);
            curl_easy_setopt(easy_, CURLOPT_SEEKFUNCTION, &HttpExecution::Seek);
            curl_easy_setopt(easy_, CURLOPT_SEEKDATA, this);
            curl_easy_setopt(easy_, CURLOPT_POSTFIELDSIZE_LARGE,
                             static_cast<curl_off_t>(body_.size()));
        }
        curl_easy_setopt(easy_, CURLOPT_WRITEFUNCTION, &HttpExecution::Write);
        curl_easy_setopt(easy_, CURLOPT_WRITEDATA, this);
        curl_easy_setopt(easy_, CURLOPT_ERRORBUFFER, errbuf_);
        curl_easy_setopt(easy_, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(easy_, CURLOPT_TIMEOUT_MS, static_cast<long>(queue_.timeout.count()));
        curl_easy_setopt(easy_, CURLOPT_FOLLOWLOCATION, 0L);  // followed by hand, same origin only
        curl_easy_setopt(easy_, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(easy_, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(easy_, CURLOPT_SSL_VERIFYHOST, 2L);
        if (!queue_.ca_file.empty())
            curl_easy_setopt(easy_, CURLOPT_CAINFO, queue_.ca_file.c_str());
        if (curl_multi_add_handle(multi_.handle(), easy_) != CURLM_OK)
            return Fail("curl_multi_add_handle failed");
        added_ = true;
    }

    void Fail(const std::string &message) {
        Cleanup();
        error_timer_ = loop_.After(Millis(0), [this, message] {
            error_timer_ = 0;
            Outcome o;
            o.kind = OutcomeKind::kFail;
            o.error = message;
            Report(std::move(o));
        });
    }

    void Cleanup() {
        if (easy_) {
            if (added_) curl_multi_remove_handle(multi_.handle(), easy_);
            curl_easy_cleanup(easy_);
        }
        easy_ = nullptr;
        added_ = false;
        if (headers_) curl_slist_free_all(headers_);
        headers_ = nullptr;
    }

    void Report(Outcome outcome) {
        Cleanup();
        DoneCallback done = std::move(done_);
        done_ = nullptr;
        if (done) done(std::move(outcome));  // may destroy *this
    }

    EventLoop &loop_;
    CurlMulti &multi_;
    const QueueConfig &queue_;
    DoneCallback done_;
    std::string body_;
    size_t body_sent_ = 0;  // bytes of body_ handed to libcurl in this transfer
    std::string webhook_id_;
    std::string url_;
    CURL *easy_ = nullptr;
    bool added_ = false;
    curl_slist *headers_ = nullptr;
    std::string response_;
    bool truncated_ = false;
    int redirects_ = 0;
    bool see_other_ = false;  // a 303 was followed: GET from now on
    char errbuf_[CURL_ERROR_SIZE] = {0};
    EventLoop::TimerId error_timer_ = 0;
};

}  // namespace

CurlMulti::CurlMulti(EventLoop &loop) : loop_(loop), multi_(curl_multi_init()) {
    if (!multi_) throw std::runtime_error("curl_multi_init failed");
    curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, &CurlMulti::SocketCallback);
    curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
    curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, &CurlMulti::TimerCallback);
    curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
    curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, 256L);
}

CurlMulti::~CurlMulti() {
    loop_.Cancel(timer_);
    curl_multi_cleanup(multi_);
}

int CurlMulti::SocketCallback(CURL *, curl_socket_t s, int what, void *userp, void *) {
    auto *self = static_cast<CurlMulti *>(userp);
    if (what == CURL_POLL_REMOVE) {
        self->loop_.Unwatch(s);
        return 0;
    }
    uint32_t events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) events |= EPOLLIN;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) events |= EPOLLOUT;
    try {
        self->loop_.Watch(s, events, [self, s](uint32_t ev) {
            int flags = 0;
            if (ev & EPOLLIN) flags |= CURL_CSELECT_IN;
            if (ev & EPOLLOUT) flags |= CURL_CSELECT_OUT;
            if (ev & (EPOLLERR | EPOLLHUP)) flags |= CURL_CSELECT_ERR;
            self->Action(s, flags);
        });
    } catch (const std::exception &e) {
        // No exception may cross libcurl's C frames; -1 fails the transfer.
        Log(LogLevel::kError, "cannot watch a transfer's socket", {{"error", e.what()}});
        return -1;
    }
    return 0;
}

int CurlMulti::TimerCallback(CURLM *, long timeout_ms, void *userp) {
    auto *self = static_cast<CurlMulti *>(userp);
    self->loop_.Cancel(self->timer_);
    if (timeout_ms >= 0) {
        // Never call back into curl from inside its own callback: defer.
        self->timer_ = self->loop_.After(Millis(timeout_ms), [self] {
            self->timer_ = 0;
            self->Action(CURL_SOCKET_TIMEOUT, 0);
        });
    }
    return 0;
}

void CurlMulti::Action(curl_socket_t s, int flags) {
    int running = 0;
    curl_multi_socket_action(multi_, s, flags, &running);
    CheckDone();
}

void CurlMulti::CheckDone() {
    // Drain the message queue before acting on any message: removing an
    // easy handle scans the queue for its messages, so removing while
    // thousands of messages wait would be quadratic.
    std::vector<std::pair<void *, CURLcode>> done;
    int pending = 0;
    while (CURLMsg *msg = curl_multi_info_read(multi_, &pending)) {
        if (msg->msg != CURLMSG_DONE) continue;
        void *owner = nullptr;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &owner);
        if (owner) done.emplace_back(owner, msg->data.result);
    }
    for (auto &[owner, code] : done) static_cast<HttpExecution *>(owner)->OnDone(code);
}

Outcome HttpOutcome(long status, const std::string &body, bool body_truncated,
                    std::optional<long long> retry_after_seconds) {
    Outcome o;
    if (status >= 200 && status < 300) {
        o.kind = OutcomeKind::kComplete;
        size_t start = body.find_first_not_of(" \t\r\n");
        if (start == std::string::npos) return o;
        o.result = (!body_truncated && IsJsonbSafe(body)) ? body : JsonQuote(body);
        return o;
    }
    std::string excerpt = SanitizeText(body.substr(0, 512));
    while (!excerpt.empty() && (excerpt.back() == '\n' || excerpt.back() == '\r'))
        excerpt.pop_back();
    o.error = excerpt.empty() ? fmt::format("HTTP {}", status)
                              : fmt::format("HTTP {}: {}", status, excerpt);
    if (status == 408 || status == 429 || status >= 500) {
        o.kind = OutcomeKind::kRetry;
        if (retry_after_seconds && *retry_after_seconds > 0)
            o.retry_in = Millis(*retry_after_seconds * 1000);
    } else if (status >= 400) {
        o.kind = OutcomeKind::kDiscard;
    } else {
        o.kind = OutcomeKind::kFail;
    }
    return o;
}

bool SameOrigin(const std::string &from, const std::string &to) {
    std::unique_ptr<CURLU, CurlUrlDeleter> a(curl_url()), b(curl_url());
    if (!a || !b) return false;
    if (curl_url_set(a.get(), CURLUPART_URL, from.c_str(), 0) != CURLUE_OK) return false;
    if (curl_url_set(b.get(), CURLUPART_URL, to.c_str(), 0) != CURLUE_OK) return false;
    for (CURLUPart part : {CURLUPART_SCHEME, CURLUPART_HOST, CURLUPART_PORT}) {
        auto pa = UrlPart(a.get(), part), pb = UrlPart(b.get(), part);
        if (!pa || !pb || *pa != *pb) return false;
    }
    return true;
}

int CurlShardCount(int max_transfers) {
    constexpr int kTransfersPerShard = 128;
    constexpr int kMaxShards = 64;  // with the 256 idle connections each may keep
    return std::clamp((max_transfers + kTransfersPerShard - 1) / kTransfersPerShard, 1, kMaxShards);
}

std::unique_ptr<Execution> StartHttp(EventLoop &loop, CurlMulti &multi, const QueueConfig &queue,
                                     const ClaimedJob &job, DoneCallback done) {
    return std::make_unique<HttpExecution>(loop, multi, queue, job, std::move(done));
}

}  // namespace jobq
