// Unit tests of core/validate: the input rules every SQL entry point uses.
#include "core/validate.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "core/error.h"

namespace {

std::string SqlStateOf(void (*fn)()) {
    try {
        fn();
    } catch (const jobq::Error &e) {
        return e.sqlstate();
    }
    return "none";
}

TEST(QueueName, AcceptsAllowListedNames) {
    EXPECT_NO_THROW(jobq::CheckQueueName("emails"));
    EXPECT_NO_THROW(jobq::CheckQueueName("a"));
    EXPECT_NO_THROW(jobq::CheckQueueName("0day.reports_v2-eu"));
    EXPECT_NO_THROW(jobq::CheckQueueName(std::string(48, 'q')));
}

TEST(QueueName, RejectsEverythingElseWithInvalidName) {
    for (const char *bad : {"", "Emails", "has space", "_x", ".x", "-x", "a;b", "é", "a\"b"}) {
        try {
            jobq::CheckQueueName(bad);
            ADD_FAILURE() << "accepted " << bad;
        } catch (const jobq::Error &e) {
            EXPECT_STREQ(e.sqlstate(), "42602") << bad;
        }
    }
}

TEST(QueueName, RejectsNamesOverTheLimit) {
    try {
        jobq::CheckQueueName(std::string(49, 'q'));
        ADD_FAILURE();
    } catch (const jobq::Error &e) {
        EXPECT_NE(std::string(e.what()).find("49 bytes"), std::string::npos);
        EXPECT_NE(e.detail().find("48"), std::string::npos);
    }
}

TEST(Limits, ClaimBatch) {
    EXPECT_NO_THROW(jobq::CheckClaimBatch(1));
    EXPECT_NO_THROW(jobq::CheckClaimBatch(10000));
    EXPECT_EQ(SqlStateOf([] { jobq::CheckClaimBatch(0); }), "22023");
    EXPECT_EQ(SqlStateOf([] { jobq::CheckClaimBatch(10001); }), "22023");
    EXPECT_EQ(SqlStateOf([] { jobq::CheckClaimBatch(-5); }), "22023");
}

TEST(Limits, WorkerName) {
    EXPECT_NO_THROW(jobq::CheckWorkerName("host-1:4242"));
    EXPECT_EQ(SqlStateOf([] { jobq::CheckWorkerName(""); }), "22023");
    EXPECT_EQ(SqlStateOf([] { jobq::CheckWorkerName(std::string(201, 'w')); }), "22023");
}

TEST(Limits, MaxAttemptsAndPriority) {
    EXPECT_NO_THROW(jobq::CheckMaxAttempts(1));
    EXPECT_NO_THROW(jobq::CheckMaxAttempts(1000));
    EXPECT_EQ(SqlStateOf([] { jobq::CheckMaxAttempts(0); }), "22023");
    EXPECT_EQ(SqlStateOf([] { jobq::CheckMaxAttempts(1001); }), "22023");
    EXPECT_NO_THROW(jobq::CheckPriority(-32768));
    EXPECT_NO_THROW(jobq::CheckPriority(32767));
    EXPECT_EQ(SqlStateOf([] { jobq::CheckPriority(32768); }), "22023");
}

TEST(Limits, PayloadSizeRejectsNeverTruncates) {
    EXPECT_NO_THROW(jobq::CheckPayloadSize(1024, 1024));
    try {
        jobq::CheckPayloadSize(1025, 1024);
        ADD_FAILURE();
    } catch (const jobq::Error &e) {
        EXPECT_STREQ(e.sqlstate(), "54000");
        EXPECT_NE(std::string(e.what()).find("1025"), std::string::npos);
    }
}

TEST(Intervals, BoundsPerSetting) {
    constexpr int64_t kSecond = 1000000;
    EXPECT_NO_THROW(jobq::CheckIntervalSetting("lease", kSecond));
    EXPECT_NO_THROW(jobq::CheckIntervalSetting("lease", 7 * 86400 * kSecond));
    EXPECT_EQ(SqlStateOf([] { jobq::CheckIntervalSetting("lease", 1); }), "22023");
    EXPECT_EQ(SqlStateOf([] { jobq::CheckIntervalSetting("lease", 7 * 86400 * kSecond + 1); }),
              "22023");
    EXPECT_NO_THROW(jobq::CheckIntervalSetting("retry_in", 0));
    EXPECT_NO_THROW(jobq::CheckIntervalSetting("retention", 0));
    EXPECT_EQ(SqlStateOf([] { jobq::CheckIntervalSetting("retry_in", -1); }), "22023");
    EXPECT_EQ(SqlStateOf([] { jobq::CheckIntervalSetting("retention", INT64_MAX); }), "22023");
    EXPECT_EQ(SqlStateOf([] { jobq::CheckIntervalSetting("no_such_setting", 1); }), "22023");
    try {
        jobq::CheckIntervalSetting("backoff_max", INT64_MAX);
        FAIL();
    } catch (const jobq::Error &e) {
        EXPECT_STREQ(e.what(), "backoff_max must be between 1 millisecond and 30 days");
    }
}

TEST(Intervals, EveryBoundIsOrderedAndFarFromOverflow) {
    for (const char *name : {"lease", "backoff_base", "backoff_max", "retention", "handler_timeout",
                             "retry_in", "delay", "debounce", "unique_window"}) {
        const jobq::IntervalBounds *b = jobq::FindIntervalBounds(name);
        ASSERT_NE(b, nullptr) << name;
        EXPECT_LE(0, b->min_us) << name;
        EXPECT_LT(b->min_us, b->max_us) << name;
        EXPECT_LE(b->max_us, int64_t{3650} * 86400 * 1000000) << name;
    }
}

TEST(UniqueKey, LengthLimit) {
    EXPECT_NO_THROW(jobq::CheckUniqueKeyLength("unique_key", jobq::kMaxUniqueKeyLength));
    EXPECT_EQ(SqlStateOf([] { jobq::CheckUniqueKeyLength("unique_key", 3000); }), "54000");
}

TEST(UniqueMode, ParsesTheThreeModes) {
    EXPECT_EQ(jobq::ParseUniqueMode("keep"), jobq::UniqueMode::kKeep);
    EXPECT_EQ(jobq::ParseUniqueMode("replace"), jobq::UniqueMode::kReplace);
    EXPECT_EQ(jobq::ParseUniqueMode("debounce"), jobq::UniqueMode::kDebounce);
    EXPECT_EQ(SqlStateOf([] { jobq::ParseUniqueMode("KEEP"); }), "22023");
    EXPECT_EQ(SqlStateOf([] { jobq::ParseUniqueMode(""); }), "22023");
}

TEST(Batches, ParallelArraysMustMatch) {
    EXPECT_NO_THROW(jobq::CheckSameLength("tokens", 3, 3));
    EXPECT_EQ(SqlStateOf([] { jobq::CheckSameLength("tokens", 3, 2); }), "2202E");
}

TEST(LiveJobRow, AcceptsEveryLegalState) {
    for (const char *state : {"available", "scheduled", "retryable"})
        EXPECT_TRUE(jobq::IsValidLiveJobRow({state, 0, 1, false, false})) << state;
    EXPECT_TRUE(jobq::IsValidLiveJobRow({"running", 1, 1, true, true}));
    EXPECT_TRUE(jobq::IsValidLiveJobRow({"retryable", 999, 1000, false, false}));
}

TEST(LiveJobRow, RejectsBrokenInvariants) {
    // Finished and unknown states belong to the archive or nowhere.
    EXPECT_FALSE(jobq::IsValidLiveJobRow({"completed", 1, 1, false, false}));
    EXPECT_FALSE(jobq::IsValidLiveJobRow({"", 0, 1, false, false}));
    // A lease exactly when running: both parts, and only then.
    EXPECT_FALSE(jobq::IsValidLiveJobRow({"running", 1, 1, true, false}));
    EXPECT_FALSE(jobq::IsValidLiveJobRow({"running", 1, 1, false, true}));
    EXPECT_FALSE(jobq::IsValidLiveJobRow({"available", 0, 1, true, true}));
    // Attempts within 0..max_attempts, max_attempts within 1..1000.
    EXPECT_FALSE(jobq::IsValidLiveJobRow({"available", -1, 1, false, false}));
    EXPECT_FALSE(jobq::IsValidLiveJobRow({"running", 2, 1, true, true}));
    EXPECT_FALSE(jobq::IsValidLiveJobRow({"available", 0, 0, false, false}));
    EXPECT_FALSE(jobq::IsValidLiveJobRow({"available", 0, 1001, false, false}));
}

}  // namespace
