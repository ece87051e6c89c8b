// jobq-runner entry point: command line, config, process setup.
//
// Exit status: 0 after a clean shutdown, 1 on a second signal or when jobs
// could not be handed back, 2 on a configuration or setup error, including
// database errors at start-up that retrying cannot heal (see runner.h).
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>
#include <curl/curl.h>
#include <fmt/format.h>

#include "config.h"
#include "log.h"
#include "runner.h"

namespace {

// Children get fds 0-2 by dup2; if ours were closed a pipe could land there.
void EnsureStandardFds() {
    for (int fd = 0; fd < 3; ++fd) {
        if (fcntl(fd, F_GETFD) < 0) {
            int null_fd = open("/dev/null", O_RDWR);
            if (null_fd >= 0 && null_fd != fd) {
                dup2(null_fd, fd);
                close(null_fd);
            }
        }
    }
}

// Thousands of transfers and children in flight need thousands of fds.
void RaiseFdLimit() {
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
}

}  // namespace

int main(int argc, char **argv) {
    EnsureStandardFds();
    CLI::App app{"jobq-runner: claims jobs from jobq queues and runs their handlers"};
    std::string config_path, dsn, listen, worker, grace, poll;
    bool verbose = false, check = false;
    app.add_option("-c,--config", config_path, "TOML config file")->required();
    app.add_option("--dsn", dsn,
                   "libpq connection string (overrides [database] dsn; PG* variables apply)");
    app.add_option("--listen", listen,
                   "host:port for /metrics and /healthz (overrides [http] listen)");
    app.add_option("--worker", worker, "worker name recorded on claims (default host:pid)");
    app.add_option("--grace-period", grace,
                   "time running jobs get after SIGTERM (overrides [runner] grace_period)");
    app.add_option("--poll-interval", poll,
                   "fallback poll interval (overrides [runner] poll_interval)");
    app.add_flag("-v,--verbose", verbose, "log every job");
    app.add_flag("--check", check, "validate the config and exit");
    CLI11_PARSE(app, argc, argv);
    jobq::SetVerbose(verbose);

    jobq::Config config;
    try {
        config = jobq::LoadConfigFile(config_path);
        if (!dsn.empty()) {
            jobq::CheckDsn("--dsn", dsn);
            config.dsn = dsn;
        }
        if (!listen.empty()) {
            std::string host;
            int port;
            jobq::ParseListen("--listen", listen, &host, &port);
            config.listen = listen;
        }
        if (!worker.empty()) config.worker = worker;
        if (!grace.empty()) {
            auto d = jobq::ParseDuration(grace);
            if (!d) throw jobq::ConfigError("--grace-period: invalid duration (use e.g. \"30s\")");
            config.grace_period = *d;
        }
        if (!poll.empty()) {
            auto d = jobq::ParseDuration(poll);
            if (!d || d->count() <= 0)
                throw jobq::ConfigError("--poll-interval: invalid duration (use e.g. \"5s\")");
            config.poll_interval = *d;
        }
    } catch (const jobq::ConfigError &e) {
        fmt::print(stderr, "jobq-runner: config error: {}\n", e.what());
        return 2;
    }
    if (check) {
        fmt::print("jobq-runner: config ok ({} queues)\n", config.queues.size());
        return 0;
    }
    RaiseFdLimit();
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fmt::print(stderr, "jobq-runner: curl_global_init failed\n");
        return 2;
    }
    int status;
    try {
        jobq::Runner runner(std::move(config));
        status = runner.Run();
    } catch (const std::exception &e) {
        jobq::Log(jobq::LogLevel::kError, "fatal", {{"error", e.what()}});
        status = 2;
    }
    curl_global_cleanup();
    return status;
}
