// Prometheus text rendering (format version 0.0.4).
#include "metrics.h"

#include <fmt/format.h>

namespace jobq {

Histogram::Histogram()
    : bounds_{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300},
      counts_(bounds_.size() + 1, 0) {}

void Histogram::Observe(double seconds) {
    size_t i = 0;
    while (i < bounds_.size() && seconds > bounds_[i]) ++i;
    ++counts_[i];
    ++count_;
    sum_ += seconds;
}

void Histogram::Render(std::string *out, const std::string &name, const std::string &labels) const {
    std::string sep = labels.empty() ? "" : ",";
    uint64_t cumulative = 0;
    for (size_t i = 0; i < bounds_.size(); ++i) {
        cumulative += counts_[i];
        *out += fmt::format("{}_bucket{{{}{}le=\"{:g}\"}} {}\n", name, labels, sep, bounds_[i],
                            cumulative);
    }
    cumulative += counts_.back();
    *out += fmt::format("{}_bucket{{{}{}le=\"+Inf\"}} {}\n", name, labels, sep, cumulative);
    std::string braces = labels.empty() ? "" : "{" + labels + "}";
    *out += fmt::format("{}_sum{} {:g}\n{}_count{} {}\n", name, braces, sum_, name, braces, count_);
}

std::string Metrics::Render(uint64_t reconnects, bool database_up) const {
    std::string out;
    auto counter = [&](const char *name, const char *help, uint64_t QueueMetrics::*field) {
        out += fmt::format("# HELP {} {}\n# TYPE {} counter\n", name, help, name);
        for (const auto &[q, m] : queues_)
            out += fmt::format("{}{{queue=\"{}\"}} {}\n", name, q, m.*field);
    };
    counter("jobq_runner_jobs_claimed_total", "Jobs claimed by this runner.",
            &QueueMetrics::claimed);
    counter("jobq_runner_jobs_completed_total", "Completions applied by the database.",
            &QueueMetrics::completed);
    counter("jobq_runner_jobs_failed_total", "Failures applied by the database.",
            &QueueMetrics::failed);
    counter("jobq_runner_jobs_retried_total", "Failed jobs that will be retried.",
            &QueueMetrics::retried);
    counter("jobq_runner_jobs_dead_total", "Failed jobs that went dead.", &QueueMetrics::dead);
    counter("jobq_runner_jobs_released_total", "Jobs handed back at shutdown.",
            &QueueMetrics::released);
    counter("jobq_runner_jobs_lost_total",
            "Jobs stopped because their lease was lost, cancelled or could not be extended.",
            &QueueMetrics::lost);
    counter("jobq_runner_settles_refused_total",
            "Settles refused because the lease token was stale.", &QueueMetrics::refused);
    out +=
        "# HELP jobq_runner_jobs_running Handlers running now.\n# TYPE jobq_runner_jobs_running "
        "gauge\n";
    for (const auto &[q, m] : queues_)
        out += fmt::format("jobq_runner_jobs_running{{queue=\"{}\"}} {}\n", q, m.running);
    out +=
        "# HELP jobq_runner_handler_duration_seconds Handler run time.\n# TYPE "
        "jobq_runner_handler_duration_seconds histogram\n";
    for (const auto &[q, m] : queues_)
        m.duration.Render(&out, "jobq_runner_handler_duration_seconds",
                          fmt::format("queue=\"{}\"", q));
    out +=
        "# HELP jobq_runner_claim_round_trip_seconds Round trip of one claim statement.\n# TYPE "
        "jobq_runner_claim_round_trip_seconds histogram\n";
    claim_round_trip_.Render(&out, "jobq_runner_claim_round_trip_seconds", "");
    out += fmt::format(
        "# HELP jobq_runner_reconnects_total Database reconnects (all connections).\n# TYPE "
        "jobq_runner_reconnects_total counter\njobq_runner_reconnects_total {}\n",
        reconnects);
    out += fmt::format(
        "# HELP jobq_runner_database_up Whether the work and settle connections are ready.\n# TYPE "
        "jobq_runner_database_up gauge\njobq_runner_database_up {}\n",
        database_up ? 1 : 0);
    return out;
}

}  // namespace jobq
