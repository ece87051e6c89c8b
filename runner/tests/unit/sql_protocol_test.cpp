// Shapes of the claim and settle statements: only non-empty parts, values
// only as parameters.
#include <gtest/gtest.h>

#include "settler.h"
#include "sql_protocol.h"

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
    EXPECT_EQ(st.sql.find("synchronous_commit"), std::string::npos);
}

TEST(ClaimStatement, NotDurableSkipsOnlyItsOwnCommitFlush) {
    auto st = jobq::BuildClaimStatement({{"a", 5, std::nullopt}}, "host:1", false);
    EXPECT_NE(st.sql.find("set_config('synchronous_commit', 'off', true)"), std::string::npos);
    EXPECT_EQ(st.params.size(), 4u);
}

TEST(SplitBatch, HalvesInOrderAndLosesNothing) {
    jobq::SettleBatch batch;
    batch.completes.push_back({1, 11, std::nullopt});
    batch.completes.push_back({2, 12, std::nullopt});
    batch.fails.push_back({3, 13, "boom", std::nullopt, false});
    batch.heartbeats.push_back({4, 14, std::nullopt});
    batch.releases.push_back({5, 15});
    auto [first, second] = jobq::SplitBatch(batch);
    EXPECT_EQ(first.size(), 2u);
    EXPECT_EQ(second.size(), 3u);
    ASSERT_EQ(first.completes.size(), 2u);
    EXPECT_EQ(first.completes[1].id, 2);
    EXPECT_EQ(second.fails.size(), 1u);
    EXPECT_EQ(second.heartbeats.size(), 1u);
    EXPECT_EQ(second.releases.size(), 1u);

    jobq::SettleBatch two;
    two.releases.push_back({6, 16});
    two.releases.push_back({7, 17});
    auto [a, b] = jobq::SplitBatch(two);
    ASSERT_EQ(a.releases.size(), 1u);
    ASSERT_EQ(b.releases.size(), 1u);
    EXPECT_EQ(a.releases[0].id, 6);
    EXPECT_EQ(b.releases[0].id, 7);
}
