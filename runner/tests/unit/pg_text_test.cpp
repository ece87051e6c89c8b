// Postgres array literals, settle/claim statement shapes, exec and HTTP
// outcome rules, request-head parsing.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include "exec_handler.h"
#include "http_handler.h"
#include "metrics_server.h"
#include "pg_text.h"
#include "settler.h"

using jobq::ArrayLiteral;

TEST(ArrayLiteral, QuotesEverything) {
    EXPECT_EQ(ArrayLiteral(std::vector<std::string>{}), "{}");
    EXPECT_EQ(ArrayLiteral(std::vector<std::string>{"a", "b c"}), "{\"a\",\"b c\"}");
    EXPECT_EQ(ArrayLiteral(std::vector<std::string>{"q\"uote", "back\\slash", "{,}"}),
              "{\"q\\\"uote\",\"back\\\\slash\",\"{,}\"}");
    EXPECT_EQ(ArrayLiteral(std::vector<std::optional<std::string>>{std::nullopt, "NULL"}),
              "{NULL,\"NULL\"}");
}

TEST(SettleStatement, OnlyNonEmptyParts) {
    jobq::SettleBatch batch;
    batch.completes.push_back({1, 11, std::string("{\"ok\":true}")});
    auto st = jobq::BuildSettleStatement(batch);
    EXPECT_NE(st.sql.find("jobq.complete"), std::string::npos);
    EXPECT_EQ(st.sql.find("jobq.fail_many"), std::string::npos);
    EXPECT_EQ(st.params.size(), 3u);
    EXPECT_EQ(*st.params[2], "{\"{\\\"ok\\\":true}\"}");

    batch.fails.push_back({2, 12, "boom", jobq::Millis(1500), true});
    batch.heartbeats.push_back({3, 13, std::nullopt});
    batch.releases.push_back({4, 14});
    st = jobq::BuildSettleStatement(batch);
    EXPECT_EQ(st.params.size(), 3u + 5u + 3u + 2u);
    EXPECT_EQ(*st.params[6], "{\"1500 milliseconds\"}");
    EXPECT_EQ(*st.params[7], "{\"t\"}");
    EXPECT_EQ(*st.params[10], "{NULL}");
    EXPECT_NE(st.sql.find("jobq.release($12::bigint[], $13::bigint[])"), std::string::npos);
}

TEST(ClaimStatement, OneClaimPerQueue) {
    auto st =
        jobq::BuildClaimStatement({{"a", 5, std::nullopt}, {"b", 1, jobq::Millis(2000)}}, "host:1");
    ASSERT_EQ(st.params.size(), 4u);
    EXPECT_EQ(*st.params[0], "{\"a\",\"b\"}");
    EXPECT_EQ(*st.params[1], "{\"5\",\"1\"}");
    EXPECT_EQ(*st.params[2], "{NULL,\"2000 milliseconds\"}");
    EXPECT_EQ(*st.params[3], "host:1");
}

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

TEST(RequestHead, Parsing) {
    std::string method, path;
    EXPECT_EQ(jobq::ParseRequestHead("GET /metrics?x=1 HTTP/1.1\r\nHost: x", &method, &path), 0);
    EXPECT_EQ(method, "GET");
    EXPECT_EQ(path, "/metrics");
    EXPECT_EQ(jobq::ParseRequestHead("garbage", &method, &path), 400);
    EXPECT_EQ(jobq::ParseRequestHead("GET /x HTTP/2.0", &method, &path), 505);
    EXPECT_EQ(jobq::ParseRequestHead("GET x HTTP/1.1", &method, &path), 400);
}
