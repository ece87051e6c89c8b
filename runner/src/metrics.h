// Runner metrics, rendered in the Prometheus text exposition format.
//
// Vocabulary: counters only grow (`_total`); gauges are read at scrape
// time; histograms have fixed buckets in seconds. Per-queue series carry a
// `queue` label. Names:
//   jobq_runner_jobs_claimed_total{queue}     claimed by this runner
//   jobq_runner_jobs_completed_total{queue}   completions the database applied
//   jobq_runner_jobs_failed_total{queue}      failures the database applied
//   jobq_runner_jobs_retried_total{queue}     ... of which will run again
//   jobq_runner_jobs_dead_total{queue}        ... of which went dead
//   jobq_runner_jobs_released_total{queue}    handed back at shutdown
//   jobq_runner_jobs_lost_total{queue}        stopped: lease lost, cancelled or fenced
//   jobq_runner_settles_refused_total{queue}  settles refused (stale lease token)
//   jobq_runner_jobs_running{queue}           handlers running now
//   jobq_runner_handler_duration_seconds{queue} histogram
//   jobq_runner_claim_round_trip_seconds      histogram
//   jobq_runner_reconnects_total              database reconnects, all connections summed
//   jobq_runner_database_up                   1 when the work and settle connections are ready
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace jobq {

class Histogram {
  public:
    Histogram();
    void Observe(double seconds);
    void Render(std::string *out, const std::string &name, const std::string &labels) const;

  private:
    std::vector<double> bounds_;
    std::vector<uint64_t> counts_;  // per bucket, not cumulative
    uint64_t count_ = 0;
    double sum_ = 0;
};

struct QueueMetrics {
    uint64_t claimed = 0, completed = 0, failed = 0, retried = 0, dead = 0;
    uint64_t released = 0, lost = 0, refused = 0;
    int64_t running = 0;
    Histogram duration;
};

class Metrics {
  public:
    QueueMetrics &queue(const std::string &name) { return queues_[name]; }
    Histogram &claim_round_trip() { return claim_round_trip_; }
    std::string Render(uint64_t reconnects, bool database_up) const;

  private:
    std::map<std::string, QueueMetrics> queues_;
    Histogram claim_round_trip_;
};

}  // namespace jobq
