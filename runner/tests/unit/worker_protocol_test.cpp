// The worker line protocol: what the runner accepts from a child, what it
// refuses (with the job named when the line named one), and the lines it
// writes.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "handlers/worker_protocol.h"
#include "json_text.h"

namespace jobq {
namespace {

TEST(WorkerProtocol, ParsesEveryChildMessage) {
    auto ready = ParseChildLine(R"({"type":"ready","protocol":1})");
    ASSERT_TRUE(ready.message);
    EXPECT_EQ(ready.message->type, ChildMessageType::kReady);
    EXPECT_EQ(ready.message->protocol, 1);

    auto progress = ParseChildLine(R"({"type":"progress","id":7,"progress":{"pct":50}})");
    ASSERT_TRUE(progress.message);
    EXPECT_EQ(progress.message->id, 7);
    EXPECT_EQ(progress.message->progress.value(), R"({"pct":50})");
    EXPECT_FALSE(progress.message->state);

    auto sleep = ParseChildLine(R"({"type":"sleep","id":8,"seconds":1.5,"state":{"page":3}})");
    ASSERT_TRUE(sleep.message);
    EXPECT_EQ(sleep.message->sleep_for, Millis(1500));
    EXPECT_EQ(sleep.message->state.value(), R"({"page":3})");

    auto complete = ParseChildLine(R"({"type":"complete","id":9,"result":{"ok":true}})");
    ASSERT_TRUE(complete.message);
    EXPECT_EQ(complete.message->result.value(), R"({"ok":true})");
    auto bare = ParseChildLine(R"({"type":"complete","id":9})");
    ASSERT_TRUE(bare.message);
    EXPECT_FALSE(bare.message->result);

    auto fail = ParseChildLine(R"({"type":"fail","id":10,"error":"busy","retry_in":30})");
    ASSERT_TRUE(fail.message);
    EXPECT_EQ(fail.message->error, "busy");
    EXPECT_EQ(fail.message->retry_in.value(), Millis(30'000));
    EXPECT_FALSE(fail.message->discard);
    auto discard = ParseChildLine(R"({"type":"fail","id":10,"discard":true})");
    ASSERT_TRUE(discard.message);
    EXPECT_TRUE(discard.message->discard);
    EXPECT_EQ(discard.message->error, "failed");

    auto log = ParseChildLine(R"({"type":"log","level":"warn","message":"hi"})");
    ASSERT_TRUE(log.message);
    EXPECT_EQ(log.message->level, "warn");
    EXPECT_EQ(log.message->message, "hi");
}

TEST(WorkerProtocol, RefusesMalformedLinesAndNamesTheJob) {
    EXPECT_EQ(ParseChildLine("garbage").error, "not valid JSON");
    EXPECT_EQ(ParseChildLine("[1,2]").error, "not a JSON object");
    EXPECT_FALSE(ParseChildLine(R"({"id":1})").message);
    EXPECT_FALSE(ParseChildLine(R"({"type":"explode","id":1})").message);
    EXPECT_FALSE(ParseChildLine(R"({"type":"complete"})").message);
    EXPECT_FALSE(ParseChildLine(R"({"type":"complete","id":"7"})").message);
    auto bad_retry = ParseChildLine(R"({"type":"fail","id":5,"retry_in":-1})");
    EXPECT_FALSE(bad_retry.message);
    EXPECT_EQ(bad_retry.id.value(), 5);
    auto bad_sleep = ParseChildLine(R"({"type":"sleep","id":6})");
    EXPECT_FALSE(bad_sleep.message);
    EXPECT_EQ(bad_sleep.id.value(), 6);
    EXPECT_FALSE(ParseChildLine(R"({"type":"fail","id":5,"discard":"yes"})").message);
    EXPECT_FALSE(ParseChildLine(R"({"type":"ready"})").message);
    EXPECT_FALSE(ParseChildLine(R"({"type":"progress","id":1})").message);
    // invalid UTF-8 is refused, never passed on
    EXPECT_FALSE(ParseChildLine("{\"type\":\"complete\",\"id\":1,\"result\":\"\xff\"}").message);
}

TEST(WorkerProtocol, ResultsAreJsonbSafe) {
    auto m = ParseChildLine(R"({"type":"complete","id":1,"result":{"s":"a\u0000b"}})");
    ASSERT_TRUE(m.message);
    EXPECT_TRUE(IsJsonbSafe(*m.message->result));
}

TEST(WorkerProtocol, PeeksTheIdOfAnOversizedLine) {
    EXPECT_EQ(PeekJobId(R"({"type":"complete","id":42,"result":"xxxx)").value(), 42);
    EXPECT_EQ(PeekJobId(R"({"id": 42 , "type")").value(), 42);
    EXPECT_FALSE(PeekJobId(R"({"type":"complete","result":"xxxx)"));
    EXPECT_FALSE(PeekJobId(R"({"id":12)"));  // digits may continue beyond the prefix
}

TEST(WorkerProtocol, RunnerLinesAreOneJsonObjectEach) {
    ClaimedJob job;
    job.id = 5;
    job.queue = "q";
    job.attempt = 2;
    job.payload = R"({"a": [1, 2]})";
    job.saved_state = R"({"page": 3})";
    std::string start = StartLine(job, 1'700'000'000'123, Millis(30'000));
    ASSERT_EQ(start.back(), '\n');
    EXPECT_EQ(start.find('\n'), start.size() - 1);
    auto j = nlohmann::json::parse(start);
    EXPECT_EQ(j["type"], "start");
    EXPECT_EQ(j["id"], 5);
    EXPECT_EQ(j["attempt"], 2);
    EXPECT_EQ(j["payload"]["a"][1], 2);
    EXPECT_EQ(j["state"]["page"], 3);
    EXPECT_TRUE(j["progress"].is_null());
    EXPECT_TRUE(j["trace"].is_null());
    EXPECT_EQ(j["deadline"], "2023-11-14T22:13:20.123Z");
    EXPECT_EQ(j["timeout_ms"], 30000);
    EXPECT_EQ(nlohmann::json::parse(HelloLine("q", 8))["protocol"], kWorkerProtocolVersion);
    EXPECT_EQ(nlohmann::json::parse(CancelLine(5, "deadline"))["reason"], "deadline");
    EXPECT_EQ(nlohmann::json::parse(ShutdownLine())["type"], "shutdown");
}

}  // namespace
}  // namespace jobq

namespace jobq {
namespace {

TEST(WorkerProtocol, OneJobChannelsImplyTheId) {
    auto m = ParseChildLine(R"({"type":"progress","progress":1})", 7);
    ASSERT_TRUE(m.message);
    EXPECT_EQ(m.message->id, 7);
    EXPECT_TRUE(ParseChildLine(R"({"type":"sleep","id":7,"seconds":1})", 7).message);
    auto other = ParseChildLine(R"({"type":"sleep","id":8,"seconds":1})", 7);
    EXPECT_FALSE(other.message);
    EXPECT_EQ(other.error, "\"id\" names another job");
}

}  // namespace
}  // namespace jobq
