// Shapes of the claim and settle statements (only non-empty parts, values
// only as parameters), their results parsed by column name, and how a
// refused batch is split.
#include <gtest/gtest.h>

#include <cstring>
#include <set>

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

namespace {

// A result as libpq would build it: text columns with these names.
PGresult *MakeResult(const std::vector<const char *> &columns,
                     const std::vector<std::vector<const char *>> &rows) {
    PGresult *res = PQmakeEmptyPGresult(nullptr, PGRES_TUPLES_OK);
    std::vector<PGresAttDesc> attrs(columns.size());
    for (size_t i = 0; i < columns.size(); ++i) {
        attrs[i] = PGresAttDesc{};
        attrs[i].name = const_cast<char *>(columns[i]);
        attrs[i].typid = 25;  // text
        attrs[i].typlen = -1;
        attrs[i].atttypmod = -1;
    }
    PQsetResultAttrs(res, static_cast<int>(attrs.size()), attrs.data());
    for (size_t r = 0; r < rows.size(); ++r) {
        for (size_t c = 0; c < rows[r].size(); ++c) {
            const char *v = rows[r][c];
            PQsetvalue(res, static_cast<int>(r), static_cast<int>(c), const_cast<char *>(v),
                       v ? static_cast<int>(strlen(v)) : -1);
        }
    }
    return res;
}

}  // namespace

TEST(ClaimResult, ColumnsByTheNamesTheStatementGives) {
    auto st = jobq::BuildClaimStatement({{"a", 5, std::nullopt}}, "host:1");
    for (const char *alias :
         {"AS id", "AS queue", "AS payload", "AS attempt", "AS lease_token", "AS lease_left"})
        EXPECT_NE(st.sql.find(alias), std::string::npos) << alias;
    // Columns in another order than the statement's: found by name.
    PGresult *res = MakeResult({"lease_left", "lease_token", "attempt", "payload", "queue", "id"},
                               {{"1.5", "77", "2", "{\"x\":1}", "a", "42"}});
    auto rows = jobq::ParseClaimResult(res);
    PQclear(res);
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].job.id, 42);
    EXPECT_EQ(rows[0].job.queue, "a");
    EXPECT_EQ(rows[0].job.payload, "{\"x\":1}");
    EXPECT_EQ(rows[0].job.attempt, 2);
    EXPECT_EQ(rows[0].job.token, 77);
    EXPECT_DOUBLE_EQ(rows[0].lease_left_seconds, 1.5);
}

TEST(SettleResult, AcksByKind) {
    jobq::SettleBatch batch;
    batch.completes.push_back({1, 11, std::nullopt});
    auto st = jobq::BuildSettleStatement(batch);
    EXPECT_NE(st.sql.find("AS acks(kind, id, extra)"), std::string::npos) << st.sql;
    PGresult *res = MakeResult({"kind", "id", "extra"}, {{"c", "1", nullptr},
                                                         {"f", "2", "dead"},
                                                         {"h", "3", "9.5"},
                                                         {"r", "4", nullptr},
                                                         {"c", nullptr, nullptr}});
    auto acks = jobq::ParseSettleResult(res);
    PQclear(res);
    EXPECT_EQ(acks.completed, std::set<int64_t>{1});
    EXPECT_EQ(acks.failed.at(2), "dead");
    EXPECT_DOUBLE_EQ(acks.heartbeats.at(3), 9.5);
    EXPECT_EQ(acks.released, std::set<int64_t>{4});
}

TEST(SettleStatement, ProgressAndSleeps) {
    jobq::SettleBatch batch;
    batch.progress.push_back({1, 11, std::string("{\"pct\":5}"), std::nullopt});
    batch.sleeps.push_back({2, 12, jobq::Millis(1500), std::string("{\"page\":3}")});
    auto st = jobq::BuildSettleStatement(batch);
    EXPECT_NE(st.sql.find("jobq.set_progress(u.id, u.tok, u.progress)"), std::string::npos);
    EXPECT_NE(st.sql.find("jobq.save_state(u.id, u.tok, u.state)"), std::string::npos);
    EXPECT_NE(st.sql.find("jobq.sleep(u.id, u.tok, now() + u.delay, u.state)"), std::string::npos);
    ASSERT_EQ(st.params.size(), 8u);
    EXPECT_EQ(*st.params[3], "{NULL}");  // no state: save_state is not called
    EXPECT_EQ(*st.params[6], "{\"1500 milliseconds\"}");

    PGresult *res = MakeResult({"kind", "id", "extra"}, {{"p", "1", nullptr}, {"s", "2", nullptr}});
    auto acks = jobq::ParseSettleResult(res);
    PQclear(res);
    EXPECT_EQ(acks.progressed, std::set<int64_t>{1});
    EXPECT_EQ(acks.slept, std::set<int64_t>{2});

    auto [first, second] = jobq::SplitBatch(batch);
    EXPECT_EQ(first.progress.size(), 1u);
    EXPECT_EQ(second.sleeps.size(), 1u);
}

TEST(ClaimResult, ResumedJobsBringProgressAndState) {
    auto st = jobq::BuildClaimStatement({{"a", 5, std::nullopt}}, "host:1");
    for (const char *alias : {"AS progress", "AS saved_state"})
        EXPECT_NE(st.sql.find(alias), std::string::npos) << alias;
    PGresult *res = MakeResult(
        {"id", "queue", "lease_token", "progress", "saved_state"},
        {{"1", "a", "7", "{\"pct\": 5}", "{\"page\": 3}"}, {"2", "a", "7", nullptr, nullptr}});
    auto rows = jobq::ParseClaimResult(res);
    PQclear(res);
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[0].job.progress.value(), "{\"pct\": 5}");
    EXPECT_EQ(rows[0].job.saved_state.value(), "{\"page\": 3}");
    EXPECT_FALSE(rows[1].job.progress);
    EXPECT_FALSE(rows[1].job.saved_state);
}

// The parts run in the order of the UNION ALL: a progress report sent with
// its job's completion in one batch is applied before the job is archived.
TEST(SettleStatement, ProgressBeforeCompletion) {
    jobq::SettleBatch batch;
    batch.completes.push_back({1, 11, std::nullopt});
    batch.progress.push_back({1, 11, std::string("{\"pct\":100}"), std::nullopt});
    auto st = jobq::BuildSettleStatement(batch);
    size_t p = st.sql.find("FROM p UNION ALL"), c = st.sql.find("FROM c");
    ASSERT_NE(p, std::string::npos) << st.sql;
    ASSERT_NE(c, std::string::npos) << st.sql;
    EXPECT_LT(p, c);
}
