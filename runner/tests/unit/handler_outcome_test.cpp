// How a handler's ending maps to a settle: exec exit codes and signals,
// HTTP status classes and Retry-After, and the same-origin redirect rule.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include "handlers/exec.h"
#include "handlers/http.h"

TEST(ExecOutcome, ExitCodes) {
    jobq::QueueConfig q;
    auto exited = [](int code) { return code << 8; };
    auto o = jobq::ExecOutcome(q, exited(0), false, "{\"x\":1}\n", false, "");
    EXPECT_EQ(o.kind, jobq::OutcomeKind::kComplete);
    EXPECT_EQ(o.result, std::string("{\"x\":1}"));
    o = jobq::ExecOutcome(q, exited(0), false, "not json", false, "");
    EXPECT_EQ(o.result, std::string("\"not json\""));
    o = jobq::ExecOutcome(q, exited(0), false, "  \n", false, "");
    EXPECT_FALSE(o.result.has_value());
    o = jobq::ExecOutcome(q, exited(0), false, "[1,2", true, "");
    EXPECT_EQ(o.result, std::string("\"[1,2\""));
    o = jobq::ExecOutcome(q, exited(75), false, "", false, "try later\n");
    EXPECT_EQ(o.kind, jobq::OutcomeKind::kRetry);
    EXPECT_EQ(o.error, "exit status 75 (retry requested): try later");
    o = jobq::ExecOutcome(q, exited(65), false, "", false, "");
    EXPECT_EQ(o.kind, jobq::OutcomeKind::kDiscard);
    o = jobq::ExecOutcome(q, exited(3), false, "", false, "bad\n");
    EXPECT_EQ(o.kind, jobq::OutcomeKind::kFail);
    EXPECT_EQ(o.error, "exit status 3: bad");
    o = jobq::ExecOutcome(q, SIGSEGV, false, "", false, "");
    EXPECT_EQ(o.kind, jobq::OutcomeKind::kFail);
    EXPECT_EQ(o.error, "killed by signal 11 (SIGSEGV)");
    o = jobq::ExecOutcome(q, SIGTERM, true, "", false, "");
    EXPECT_EQ(o.error, "timed out after 30s");
}

TEST(HttpOutcome, StatusClasses) {
    auto o = jobq::HttpOutcome(200, "{\"ok\":1}", false, std::nullopt);
    EXPECT_EQ(o.kind, jobq::OutcomeKind::kComplete);
    EXPECT_EQ(o.result, std::string("{\"ok\":1}"));
    EXPECT_EQ(jobq::HttpOutcome(204, "", false, std::nullopt).result, std::nullopt);
    EXPECT_EQ(jobq::HttpOutcome(201, "created", false, std::nullopt).result,
              std::string("\"created\""));
    for (long s : {408L, 429L, 500L, 502L, 503L})
        EXPECT_EQ(jobq::HttpOutcome(s, "", false, std::nullopt).kind, jobq::OutcomeKind::kRetry)
            << s;
    for (long s : {400L, 401L, 404L, 410L, 422L})
        EXPECT_EQ(jobq::HttpOutcome(s, "", false, std::nullopt).kind, jobq::OutcomeKind::kDiscard)
            << s;
    o = jobq::HttpOutcome(503, "busy", false, 7);
    EXPECT_EQ(o.retry_in, jobq::Millis(7000));
    EXPECT_EQ(o.error, "HTTP 503: busy");
}

TEST(SameOrigin, HostSchemeAndPort) {
    EXPECT_TRUE(jobq::SameOrigin("http://127.0.0.1:8080/a", "http://127.0.0.1:8080/b?x=1"));
    EXPECT_TRUE(jobq::SameOrigin("https://h.example/a", "https://h.example:443/b"));
    EXPECT_FALSE(jobq::SameOrigin("http://127.0.0.1:8080/a", "http://127.0.0.1:8081/a"));
    EXPECT_FALSE(jobq::SameOrigin("http://a.example/", "http://b.example/"));
    EXPECT_FALSE(jobq::SameOrigin("https://a.example/", "http://a.example/"));
}
