// SQL for batched claims and settles. Values are always parameters (text
// array literals); only the shape of the statement varies with which kinds
// of settle the batch holds, so empty arrays never reach the functions.
#include "settler.h"

#include <cstdlib>

#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join (fmt 11 moved it here)

#include "pg_text.h"

namespace jobq {
namespace {

template <typename T, typename F>
std::string Column(const std::vector<T> &items, F field) {
    std::vector<std::optional<std::string>> values;
    values.reserve(items.size());
    for (const T &item : items) values.push_back(field(item));
    return ArrayLiteral(values);
}

}  // namespace

Statement BuildSettleStatement(const SettleBatch &batch) {
    Statement st;
    std::vector<std::string> ctes;
    std::vector<std::string> selects;
    auto param = [&st](std::string value) {
        st.params.emplace_back(std::move(value));
        return fmt::format("${}", st.params.size());
    };
    if (!batch.completes.empty()) {
        auto ids = param(
            Column(batch.completes, [](const CompleteItem &c) { return std::to_string(c.id); }));
        auto tokens = param(
            Column(batch.completes, [](const CompleteItem &c) { return std::to_string(c.token); }));
        auto results =
            param(Column(batch.completes, [](const CompleteItem &c) { return c.result; }));
        ctes.push_back(
            fmt::format("c AS (SELECT x.id FROM jobq.complete({}::bigint[], {}::bigint[], "
                        "{}::jsonb[]) AS x(id))",
                        ids, tokens, results));
        selects.push_back("SELECT 'c'::text, c.id, NULL::text FROM c");
    }
    if (!batch.fails.empty()) {
        auto ids =
            param(Column(batch.fails, [](const FailItem &f) { return std::to_string(f.id); }));
        auto tokens =
            param(Column(batch.fails, [](const FailItem &f) { return std::to_string(f.token); }));
        auto errors = param(Column(batch.fails, [](const FailItem &f) { return f.error; }));
        auto retry = param(Column(batch.fails, [](const FailItem &f) -> std::optional<std::string> {
            if (!f.retry_in) return std::nullopt;
            return IntervalLiteral(*f.retry_in);
        }));
        auto discard = param(Column(
            batch.fails, [](const FailItem &f) { return std::string(f.discard ? "t" : "f"); }));
        ctes.push_back(
            fmt::format("f AS (SELECT x.id, x.state FROM jobq.fail_many({}::bigint[], "
                        "{}::bigint[], {}::text[], {}::interval[], "
                        "{}::boolean[]) AS x(id, state))",
                        ids, tokens, errors, retry, discard));
        selects.push_back("SELECT 'f'::text, f.id, f.state::text FROM f");
    }
    if (!batch.heartbeats.empty()) {
        auto ids = param(
            Column(batch.heartbeats, [](const HeartbeatItem &h) { return std::to_string(h.id); }));
        auto tokens = param(Column(batch.heartbeats,
                                   [](const HeartbeatItem &h) { return std::to_string(h.token); }));
        auto leases = param(
            Column(batch.heartbeats, [](const HeartbeatItem &h) -> std::optional<std::string> {
                if (!h.lease) return std::nullopt;
                return IntervalLiteral(*h.lease);
            }));
        // One jobq.heartbeat call per distinct lease (NULL: the queue's own).
        ctes.push_back(fmt::format(
            "h AS (SELECT x.id, x.lease_expires_at FROM (SELECT u.lease, array_agg(u.id) AS ids, "
            "array_agg(u.tok) AS toks "
            "FROM unnest({}::bigint[], {}::bigint[], {}::interval[]) AS u(id, tok, lease) GROUP BY "
            "u.lease) g "
            "CROSS JOIN LATERAL jobq.heartbeat(g.ids, g.toks, g.lease) AS x(id, lease_expires_at))",
            ids, tokens, leases));
        selects.push_back(
            "SELECT 'h'::text, h.id, extract(epoch FROM h.lease_expires_at - "
            "clock_timestamp())::text FROM h");
    }
    if (!batch.releases.empty()) {
        auto ids = param(
            Column(batch.releases, [](const ReleaseItem &r) { return std::to_string(r.id); }));
        auto tokens = param(
            Column(batch.releases, [](const ReleaseItem &r) { return std::to_string(r.token); }));
        ctes.push_back(
            fmt::format("r AS (SELECT x.id FROM jobq.release({}::bigint[], {}::bigint[]) AS x(id))",
                        ids, tokens));
        selects.push_back("SELECT 'r'::text, r.id, NULL::text FROM r");
    }
    st.sql = "WITH " + fmt::format("{}", fmt::join(ctes, ", ")) + " " +
             fmt::format("{}", fmt::join(selects, " UNION ALL "));
    return st;
}

SettleAcks ParseSettleResult(const PGresult *result) {
    SettleAcks acks;
    if (!result) return acks;
    int rows = PQntuples(result);
    for (int i = 0; i < rows; ++i) {
        if (PQgetisnull(result, i, 1)) continue;
        char kind = PQgetvalue(result, i, 0)[0];
        int64_t id = std::strtoll(PQgetvalue(result, i, 1), nullptr, 10);
        const char *extra = PQgetisnull(result, i, 2) ? nullptr : PQgetvalue(result, i, 2);
        switch (kind) {
            case 'c':
                acks.completed.insert(id);
                break;
            case 'f':
                acks.failed[id] = extra ? extra : "";
                break;
            case 'h':
                acks.heartbeats[id] = extra ? std::strtod(extra, nullptr) : 0.0;
                break;
            case 'r':
                acks.released.insert(id);
                break;
            default:
                break;
        }
    }
    return acks;
}

Statement BuildClaimStatement(const std::vector<ClaimRequest> &requests,
                              const std::string &worker, bool durable) {
    Statement st;
    st.params.emplace_back(Column(requests, [](const ClaimRequest &r) { return r.queue; }));
    st.params.emplace_back(
        Column(requests, [](const ClaimRequest &r) { return std::to_string(r.max_jobs); }));
    st.params.emplace_back(
        Column(requests, [](const ClaimRequest &r) -> std::optional<std::string> {
            if (!r.lease) return std::nullopt;
            return IntervalLiteral(*r.lease);
        }));
    st.params.emplace_back(worker);
    // The remaining lease is measured against clock_timestamp() after the
    // claim ran, so the runner's local deadline (send time + remaining) can
    // only be earlier than the database's: self-fencing errs on the safe side.
    //
    // Not durable: set_config(..., is_local => true) lasts until the end of
    // the statement's own (implicit) transaction, so only this claim's
    // commit skips the WAL flush wait.
    st.sql =
        "SELECT c.id, c.queue, c.payload::text, c.attempt, c.lease_token, "
        "extract(epoch FROM c.lease_expires_at - clock_timestamp())::float8 FROM ";
    if (!durable)
        st.sql += "(SELECT pg_catalog.set_config('synchronous_commit', 'off', true)) AS async(s) "
                  "CROSS JOIN ";
    st.sql +=
        "unnest($1::text[], $2::int[], $3::interval[]) WITH ORDINALITY AS q(name, n, lease, "
        "ord) "
        "CROSS JOIN LATERAL jobq.claim(ARRAY[q.name], $4, q.n, q.lease) AS c "
        "ORDER BY q.ord";
    return st;
}

}  // namespace jobq
