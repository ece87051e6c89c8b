// The metrics endpoint: request-head parsing and the Prometheus text format.
#include <gtest/gtest.h>

#include "metrics.h"
#include "metrics_server.h"

TEST(RequestHead, Parsing) {
    std::string method, path;
    EXPECT_EQ(jobq::ParseRequestHead("GET /metrics?x=1 HTTP/1.1\r\nHost: x", &method, &path), 0);
    EXPECT_EQ(method, "GET");
    EXPECT_EQ(path, "/metrics");
    EXPECT_EQ(jobq::ParseRequestHead("garbage", &method, &path), 400);
    EXPECT_EQ(jobq::ParseRequestHead("GET /x HTTP/2.0", &method, &path), 505);
    EXPECT_EQ(jobq::ParseRequestHead("GET x HTTP/1.1", &method, &path), 400);
}

TEST(Metrics, PrometheusText) {
    jobq::Metrics m;
    m.queue("emails").claimed = 3;
    m.queue("emails").completed = 2;
    m.queue("emails").running = 1;
    m.queue("emails").duration.Observe(0.2);
    m.queue("emails").duration.Observe(7);
    m.claim_round_trip().Observe(0.004);
    std::string text = m.Render(4, true);
    EXPECT_NE(text.find("# TYPE jobq_runner_jobs_claimed_total "
                        "counter\njobq_runner_jobs_claimed_total{queue=\"emails\"} 3\n"),
              std::string::npos);
    EXPECT_NE(text.find("jobq_runner_jobs_completed_total{queue=\"emails\"} 2\n"),
              std::string::npos);
    EXPECT_NE(text.find("jobq_runner_jobs_running{queue=\"emails\"} 1\n"), std::string::npos);
    // Buckets are cumulative and end with +Inf = count.
    EXPECT_NE(
        text.find("jobq_runner_handler_duration_seconds_bucket{queue=\"emails\",le=\"0.1\"} 0\n"),
        std::string::npos);
    EXPECT_NE(
        text.find("jobq_runner_handler_duration_seconds_bucket{queue=\"emails\",le=\"0.25\"} 1\n"),
        std::string::npos);
    EXPECT_NE(
        text.find("jobq_runner_handler_duration_seconds_bucket{queue=\"emails\",le=\"10\"} 2\n"),
        std::string::npos);
    EXPECT_NE(
        text.find("jobq_runner_handler_duration_seconds_bucket{queue=\"emails\",le=\"+Inf\"} 2\n"),
        std::string::npos);
    EXPECT_NE(text.find("jobq_runner_handler_duration_seconds_count{queue=\"emails\"} 2\n"),
              std::string::npos);
    EXPECT_NE(text.find("jobq_runner_claim_round_trip_seconds_bucket{le=\"0.005\"} 1\n"),
              std::string::npos);
    EXPECT_NE(text.find("jobq_runner_reconnects_total 4\n"), std::string::npos);
    EXPECT_NE(text.find("jobq_runner_database_up 1\n"), std::string::npos);
    EXPECT_EQ(text.back(), '\n');
}
