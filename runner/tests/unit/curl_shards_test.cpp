// How many libcurl multi handles the runner spreads its http transfers over.
#include <gtest/gtest.h>

#include "handlers/http.h"

TEST(CurlShardCount, OneShardForSmallConfigurations) {
    EXPECT_EQ(jobq::CurlShardCount(1), 1);
    EXPECT_EQ(jobq::CurlShardCount(10), 1);
    EXPECT_EQ(jobq::CurlShardCount(128), 1);
}

TEST(CurlShardCount, GrowsWithTransfersUpToTheCap) {
    EXPECT_EQ(jobq::CurlShardCount(129), 2);
    EXPECT_EQ(jobq::CurlShardCount(1000), 8);
    EXPECT_EQ(jobq::CurlShardCount(8192), 64);
    // W6: 10,000 in flight stay under 256 per shard, libcurl's idle cap per
    // shard, so returning a connection never triggers its linear prune.
    EXPECT_EQ(jobq::CurlShardCount(10000), 64);
    EXPECT_LE(10000 / jobq::CurlShardCount(10000) + 1, 256);
    EXPECT_EQ(jobq::CurlShardCount(100000), 64);
}
