// Config parsing: a full valid file, defaults, and every error naming its
// setting.
#include <gtest/gtest.h>

#include <unistd.h>

#include <map>
#include <string>

#include "config.h"

using jobq::Config;
using jobq::ConfigError;
using jobq::HandlerKind;
using jobq::Millis;

namespace {

std::optional<std::string> FakeEnv(const std::string &name) {
    static const std::map<std::string, std::string> env = {{"HOOK_SECRET", "s3cret"},
                                                           {"EMPTY", ""}};
    auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
}

Config Parse(const std::string &text) { return jobq::ParseConfig(text, "test.toml", FakeEnv); }

// Expects a ConfigError whose message starts with `key` and contains `fragment`.
void ExpectError(const std::string &text, const std::string &key,
                 const std::string &fragment = "") {
    try {
        Parse(text);
        ADD_FAILURE() << "no error for:\n" << text;
    } catch (const ConfigError &e) {
        std::string message = e.what();
        EXPECT_EQ(message.rfind(key + ":", 0), 0u) << message;
        EXPECT_NE(message.find(fragment), std::string::npos) << message;
    }
}

const char *kMinimalExec =
    "[queues.q]\nhandler = \"exec\"\ncommand = [\"/bin/sh\", \"-c\", \"true\"]\n";

}  // namespace

TEST(Config, FullExample) {
    Config c = Parse(R"(
[database]
dsn = "host=/var/run/postgresql dbname=app"

[http]
listen = "127.0.0.1:9187"

[runner]
worker = "w1"
poll_interval = "2s"
grace_period = "10s"
reconnect_min = "50ms"
reconnect_max = "5s"
query_timeout = "20s"
durable_claims = true

[queues.emails]
handler = "http"
url = "https://mailer.internal/jobs"
secret_env = "HOOK_SECRET"
concurrency = 200
claim_batch = 50
timeout = "30s"

[queues.thumbnails]
handler = "exec"
command = ["sh", "--quality", "80"]
concurrency = 4
timeout = "2m"
lease = "1m"
heartbeat = "10s"
retry_exit_code = 100
discard_exit_code = 101
kill_grace = "1s"
max_output = 1000

[queues.bench]
handler = "noop"
)");
    EXPECT_EQ(c.dsn, "host=/var/run/postgresql dbname=app");
    EXPECT_EQ(c.listen, "127.0.0.1:9187");
    EXPECT_EQ(c.worker, "w1");
    EXPECT_EQ(c.poll_interval, Millis(2000));
    EXPECT_EQ(c.grace_period, Millis(10'000));
    EXPECT_EQ(c.reconnect_min, Millis(50));
    EXPECT_EQ(c.query_timeout, Millis(20'000));
    EXPECT_TRUE(c.durable_claims);
    ASSERT_EQ(c.queues.size(), 3u);
    auto find = [&c](const std::string &name) -> const jobq::QueueConfig & {
        for (const auto &q : c.queues) {
            if (q.name == name) return q;
        }
        throw std::runtime_error("no queue " + name);
    };
    const auto &emails = find("emails");
    EXPECT_EQ(emails.name, "emails");
    EXPECT_EQ(emails.handler, HandlerKind::kHttp);
    EXPECT_EQ(emails.secret_key, "s3cret");
    EXPECT_EQ(emails.concurrency, 200);
    EXPECT_EQ(emails.claim_batch, 50);
    EXPECT_EQ(emails.timeout, Millis(30'000));
    EXPECT_FALSE(emails.lease.has_value());
    const auto &thumbs = find("thumbnails");
    EXPECT_EQ(thumbs.handler, HandlerKind::kExec);
    EXPECT_EQ(thumbs.command.size(), 3u);
    EXPECT_EQ(thumbs.command[0].front(), '/');  // resolved through PATH
    EXPECT_EQ(thumbs.timeout, Millis(120'000));
    EXPECT_EQ(thumbs.lease, Millis(60'000));
    EXPECT_EQ(thumbs.heartbeat, Millis(10'000));
    EXPECT_EQ(thumbs.retry_exit_code, 100);
    EXPECT_EQ(thumbs.discard_exit_code, 101);
    EXPECT_EQ(thumbs.kill_grace, Millis(1000));
    EXPECT_EQ(thumbs.max_output, 1000u);
    EXPECT_EQ(find("bench").handler, HandlerKind::kNoop);
}

TEST(Config, Defaults) {
    Config c = Parse(kMinimalExec);
    EXPECT_EQ(c.dsn, "");  // libpq defaults and PG* variables
    EXPECT_EQ(c.listen, "");
    EXPECT_EQ(c.poll_interval, Millis(5000));
    EXPECT_EQ(c.grace_period, Millis(30'000));
    EXPECT_FALSE(c.durable_claims);
    const auto &q = c.queues[0];
    EXPECT_EQ(q.concurrency, 10);
    EXPECT_EQ(q.claim_batch, 1000);
    EXPECT_EQ(q.timeout, Millis(30'000));
    EXPECT_EQ(q.retry_exit_code, 75);
    EXPECT_EQ(q.discard_exit_code, 65);
    EXPECT_FALSE(q.heartbeat.has_value());
}

TEST(Config, IntegerDurationsAreSeconds) {
    Config c = Parse(std::string(kMinimalExec) + "timeout = 5\n");
    EXPECT_EQ(c.queues[0].timeout, Millis(5000));
}

TEST(Config, WhsecSecretIsDecoded) {
    Config c = Parse(
        "[queues.h]\nhandler = \"http\"\nurl = \"http://127.0.0.1/\"\nsecret = "
        "\"whsec_Zm9vYmFy\"\n");
    EXPECT_EQ(c.queues[0].secret_key, "foobar");
}

TEST(ConfigErrors, Syntax) { ExpectError("[queues.q\n", "test.toml:1", "expected"); }

TEST(ConfigErrors, TopLevel) {
    ExpectError("", "queues", "missing");
    ExpectError("[queues]\n", "queues", "missing");
    ExpectError(std::string("[bogus]\n") + kMinimalExec, "bogus", "unknown setting");
    ExpectError(std::string("database = 1\n") + kMinimalExec, "database", "must be a table");
    ExpectError(std::string("[database]\ndsn = 5\n") + kMinimalExec, "database.dsn",
                "must be a string");
    ExpectError(std::string("[database]\nhost = \"x\"\n") + kMinimalExec, "database.host",
                "unknown setting");
}

TEST(ConfigErrors, HttpListen) {
    ExpectError(std::string("[http]\nlisten = \"9187\"\n") + kMinimalExec, "http.listen",
                "host:port");
    ExpectError(std::string("[http]\nlisten = \"example.com:80\"\n") + kMinimalExec, "http.listen",
                "IPv4");
    ExpectError(std::string("[http]\nlisten = \"127.0.0.1:99999\"\n") + kMinimalExec, "http.listen",
                "port");
    ExpectError(std::string("[http]\nlisten = \"127.0.0.1:\"\n") + kMinimalExec, "http.listen",
                "port");
    ExpectError(std::string("[http]\nport = 1\n") + kMinimalExec, "http.port", "unknown setting");
}

TEST(ConfigErrors, Runner) {
    ExpectError(std::string("[runner]\npoll_interval = \"soon\"\n") + kMinimalExec,
                "runner.poll_interval", "invalid duration");
    ExpectError(std::string("[runner]\npoll_interval = \"0s\"\n") + kMinimalExec,
                "runner.poll_interval", "greater than zero");
    ExpectError(std::string("[runner]\ngrace_period = true\n") + kMinimalExec,
                "runner.grace_period", "duration");
    ExpectError(std::string("[runner]\nworker = \"\"\n") + kMinimalExec, "runner.worker", "empty");
    ExpectError(std::string("[runner]\ndurable_claims = \"yes\"\n") + kMinimalExec,
                "runner.durable_claims", "true or false");
    ExpectError(
        std::string("[runner]\nreconnect_min = \"2s\"\nreconnect_max = \"1s\"\n") + kMinimalExec,
        "runner.reconnect_max", "reconnect_min");
    ExpectError(std::string("[runner]\nthreads = 4\n") + kMinimalExec, "runner.threads",
                "unknown setting");
}

TEST(ConfigErrors, QueueBasics) {
    ExpectError("[queues.Bad_Name]\nhandler = \"noop\"\n", "queues.Bad_Name", "invalid queue name");
    ExpectError("[queues]\nq = 1\n", "queues.q", "must be a table");
    ExpectError("[queues.q]\nconcurrency = 1\n", "queues.q.handler", "missing");
    ExpectError("[queues.q]\nhandler = \"shell\"\n", "queues.q.handler", "unknown handler");
    ExpectError("[queues.q]\nhandler = 1\n", "queues.q.handler", "must be a string");
    ExpectError("[queues.q]\nhandler = \"noop\"\nconcurency = 1\n", "queues.q.concurency",
                "unknown setting");
    ExpectError("[queues.q]\nhandler = \"noop\"\nconcurrency = 0\n", "queues.q.concurrency",
                "between");
    ExpectError("[queues.q]\nhandler = \"noop\"\nconcurrency = \"5\"\n", "queues.q.concurrency",
                "integer");
    ExpectError("[queues.q]\nhandler = \"noop\"\nclaim_batch = 0\n", "queues.q.claim_batch",
                "between 1 and 10000");
    ExpectError("[queues.q]\nhandler = \"noop\"\nclaim_batch = 10001\n", "queues.q.claim_batch",
                "between 1 and 10000");
    ExpectError("[queues.q]\nhandler = \"noop\"\ntimeout = \"0s\"\n", "queues.q.timeout",
                "greater than zero");
    ExpectError("[queues.q]\nhandler = \"noop\"\ntimeout = \"5 minutes\"\n", "queues.q.timeout",
                "invalid duration");
    ExpectError("[queues.q]\nhandler = \"noop\"\nlease = \"500ms\"\n", "queues.q.lease",
                "at least 1s");
    ExpectError("[queues.q]\nhandler = \"noop\"\nlease = \"8d\"\n", "queues.q.lease",
                "at most 7d");
    ExpectError("[queues.q]\nhandler = \"noop\"\nlease = \"10s\"\nheartbeat = \"10s\"\n",
                "queues.q.heartbeat", "shorter than the lease");
    ExpectError("[queues.q]\nhandler = \"noop\"\nmax_output = -1\n", "queues.q.max_output",
                "between");
    ExpectError("[queues.q]\nhandler = \"noop\"\nurl = \"http://x/\"\n", "queues.q.url",
                "not valid for handler \"noop\"");
}

TEST(ConfigErrors, Exec) {
    ExpectError("[queues.q]\nhandler = \"exec\"\n", "queues.q.command", "missing");
    ExpectError("[queues.q]\nhandler = \"exec\"\ncommand = []\n", "queues.q.command",
                "non-empty array");
    ExpectError("[queues.q]\nhandler = \"exec\"\ncommand = \"/bin/true\"\n", "queues.q.command",
                "non-empty array");
    ExpectError("[queues.q]\nhandler = \"exec\"\ncommand = [\"/bin/true\", 3]\n",
                "queues.q.command", "non-empty array");
    ExpectError("[queues.q]\nhandler = \"exec\"\ncommand = [\"/nonexistent/cmd\"]\n",
                "queues.q.command", "not executable");
    ExpectError("[queues.q]\nhandler = \"exec\"\ncommand = [\"no-such-command-jobq\"]\n",
                "queues.q.command", "not found in PATH");
    ExpectError(std::string(kMinimalExec) + "retry_exit_code = 0\n", "queues.q.retry_exit_code",
                "between");
    ExpectError(std::string(kMinimalExec) + "discard_exit_code = 75\n",
                "queues.q.discard_exit_code", "differ");
    ExpectError(std::string(kMinimalExec) + "kill_grace = \"x\"\n", "queues.q.kill_grace",
                "invalid duration");
    ExpectError(std::string(kMinimalExec) + "secret = \"x\"\n", "queues.q.secret",
                "not valid for handler \"exec\"");
}

TEST(ConfigErrors, Http) {
    const std::string head = "[queues.h]\nhandler = \"http\"\n";
    ExpectError(head + "secret = \"x\"\n", "queues.h.url", "missing");
    ExpectError(head + "url = \"ftp://x/\"\nsecret = \"x\"\n", "queues.h.url",
                "http:// or https://");
    ExpectError(head + "url = \"http://x/a b\"\nsecret = \"x\"\n", "queues.h.url", "whitespace");
    ExpectError(head + "url = \"http://x/\"\n", "queues.h.secret_env", "missing");
    ExpectError(head + "url = \"http://x/\"\nsecret_env = \"NOPE\"\n", "queues.h.secret_env",
                "NOPE is not set");
    ExpectError(head + "url = \"http://x/\"\nsecret_env = \"EMPTY\"\n", "queues.h.secret_env",
                "not set or empty");
    ExpectError(head + "url = \"http://x/\"\nsecret = \"\"\n", "queues.h.secret",
                "must not be empty");
    ExpectError(head + "url = \"http://x/\"\nsecret = \"a\"\nsecret_env = \"HOOK_SECRET\"\n",
                "queues.h.secret", "not both");
    ExpectError(head + "url = \"http://x/\"\nsecret = \"whsec_!!\"\n", "queues.h.secret", "base64");
    ExpectError(head + "url = \"http://x/\"\nsecret = \"a\"\nca_file = \"/nonexistent.pem\"\n",
                "queues.h.ca_file", "cannot read");
    ExpectError(head + "url = \"http://x/\"\nsecret = \"a\"\ncommand = [\"/bin/true\"]\n",
                "queues.h.command", "not valid for handler \"http\"");
}

// The shipped example must stay valid (it runs from the repository root).
TEST(Config, ShippedExampleParses) {
    char cwd[4096];
    ASSERT_NE(getcwd(cwd, sizeof cwd), nullptr);
    ASSERT_EQ(chdir(JOBQ_REPO_ROOT), 0);
    Config c;
    EXPECT_NO_THROW(c = jobq::LoadConfigFile("runner/runner.example.toml", FakeEnv));
    ASSERT_EQ(chdir(cwd), 0);
    ASSERT_EQ(c.queues.size(), 1u);
    EXPECT_EQ(c.queues[0].name, "greetings");
    EXPECT_EQ(c.listen, "127.0.0.1:9187");
}

TEST(CheckDsn, RefusesWhatLibpqCannotParse) {
    EXPECT_NO_THROW(jobq::CheckDsn("database.dsn", ""));
    EXPECT_NO_THROW(jobq::CheckDsn("database.dsn", "mydb"));  // a database name
    EXPECT_NO_THROW(jobq::CheckDsn("database.dsn", "host=/tmp dbname=x user=y"));
    EXPECT_NO_THROW(jobq::CheckDsn("database.dsn", "postgresql://u@h:5432/db?sslmode=disable"));
    EXPECT_THROW(jobq::CheckDsn("database.dsn", "not a dsn = = ="), jobq::ConfigError);
    EXPECT_THROW(jobq::CheckDsn("--dsn", "host=x nosuchoption=1"), jobq::ConfigError);
    try {
        jobq::CheckDsn("--dsn", "not a dsn = = =");
    } catch (const jobq::ConfigError &e) {
        EXPECT_EQ(std::string(e.what()).rfind("--dsn: invalid connection string", 0), 0u)
            << e.what();
    }
}

TEST(Config, PoolModeAndListenDsn) {
    Config c = Parse(kMinimalExec);
    EXPECT_EQ(c.pool_mode, jobq::PoolMode::kSession);
    EXPECT_EQ(c.listen_dsn, "");
    c = Parse(std::string("[database]\ndsn = \"host=pool port=6432\"\npool_mode = \"transaction\"\n"
                          "listen_dsn = \"host=db port=5432\"\n") +
              kMinimalExec);
    EXPECT_EQ(c.pool_mode, jobq::PoolMode::kTransaction);
    EXPECT_EQ(c.listen_dsn, "host=db port=5432");
    ExpectError(std::string("[database]\npool_mode = \"statement\"\n") + kMinimalExec,
                "database.pool_mode", "\"statement\" is not");
    ExpectError(std::string("[database]\nlisten_dsn = \"a = = b\"\n") + kMinimalExec,
                "database.listen_dsn", "invalid connection string");
}

TEST(Config, Worker) {
    Config c = Parse(
        "[queues.w]\nhandler = \"worker\"\ncommand = [\"/bin/cat\"]\nprocesses = 3\n"
        "concurrency = 50\nkill_grace = \"2s\"\n");
    ASSERT_EQ(c.queues.size(), 1u);
    const jobq::QueueConfig &q = c.queues[0];
    EXPECT_EQ(q.handler, jobq::HandlerKind::kWorker);
    EXPECT_EQ(q.processes, 3);
    EXPECT_EQ(q.concurrency, 50);
    EXPECT_EQ(q.Slots(), 150);  // concurrency is per process
    EXPECT_EQ(q.kill_grace, jobq::Millis(2000));
    EXPECT_EQ(q.command[0], "/bin/cat");
}

TEST(ConfigErrors, Worker) {
    const std::string w = "[queues.q]\nhandler = \"worker\"\ncommand = [\"/bin/cat\"]\n";
    ExpectError("[queues.q]\nhandler = \"worker\"\n", "queues.q.command",
                "required for handler = \"worker\"");
    ExpectError(w + "processes = 0\n", "queues.q.processes", "between");
    ExpectError(w + "processes = 1000\nconcurrency = 1000\n", "queues.q.processes",
                "at most 100000");
    ExpectError(w + "retry_exit_code = 3\n", "queues.q.retry_exit_code",
                "not valid for handler \"worker\"");
    ExpectError(std::string(kMinimalExec) + "processes = 2\n", "queues.q.processes",
                "not valid for handler \"exec\"");
}
