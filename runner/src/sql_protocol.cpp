// SQL for batched claims and settles, and their results (see
// sql_protocol.h). Values are always parameters (text array literals); only
// the shape of the statement varies with which kinds of settle the batch
// holds, so empty arrays never reach the functions.
#include "sql_protocol.h"

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

// Result columns, named once for the statement and its parser.
namespace claim_column {
constexpr const char *kId = "id";
constexpr const char *kQueue = "queue";
constexpr const char *kPayload = "payload";
constexpr const char *kAttempt = "attempt";
constexpr const char *kToken = "lease_token";
constexpr const char *kLeaseLeft = "lease_left";
constexpr const char *kProgress = "progress";
constexpr const char *kSavedState = "saved_state";
}  // namespace claim_column
namespace settle_column {
constexpr const char *kKind = "kind";  // 'c', 'f', 'h', 'r', 'p' or 's'
constexpr const char *kId = "id";
constexpr const char *kExtra = "extra";  // f: the new state; h: seconds of lease left
}  // namespace settle_column

namespace check_column {
constexpr const char *kSchema = "has_schema";
constexpr const char *kRole = "has_role";
constexpr const char *kMember = "is_member";
constexpr const char *kUser = "user_name";
}  // namespace check_column

// The column's number in the result; -1 if the result lacks it.
int ColumnNumber(const PGresult *result, const char *name) { return PQfnumber(result, name); }

const char *Value(const PGresult *result, int row, int column) {
    if (column < 0 || PQgetisnull(result, row, column)) return nullptr;
    return PQgetvalue(result, row, column);
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
    // Progress first: the parts run in the order of the UNION ALL below,
    // and a job's last progress report must land before its completion
    // archives it (or its sleep releases the lease) in the same batch.
    if (!batch.progress.empty()) {
        auto ids = param(
            Column(batch.progress, [](const ProgressItem &p) { return std::to_string(p.id); }));
        auto tokens = param(
            Column(batch.progress, [](const ProgressItem &p) { return std::to_string(p.token); }));
        auto progress =
            param(Column(batch.progress, [](const ProgressItem &p) { return p.progress; }));
        auto states = param(Column(batch.progress, [](const ProgressItem &p) { return p.state; }));
        // Applied when every part given was applied (a stale token: none).
        ctes.push_back(fmt::format(
            "p AS (SELECT u.id FROM unnest({}::bigint[], {}::bigint[], {}::jsonb[], {}::jsonb[]) "
            "AS u(id, tok, progress, state) CROSS JOIN LATERAL (SELECT "
            "(u.progress IS NULL OR jobq.set_progress(u.id, u.tok, u.progress)) AS a, "
            "(u.state IS NULL OR jobq.save_state(u.id, u.tok, u.state)) AS b) x "
            "WHERE x.a AND x.b)",
            ids, tokens, progress, states));
        selects.push_back("SELECT 'p'::text, p.id, NULL::text FROM p");
    }
    if (!batch.sleeps.empty()) {
        auto ids =
            param(Column(batch.sleeps, [](const SleepItem &s) { return std::to_string(s.id); }));
        auto tokens =
            param(Column(batch.sleeps, [](const SleepItem &s) { return std::to_string(s.token); }));
        auto delays = param(
            Column(batch.sleeps, [](const SleepItem &s) { return IntervalLiteral(s.delay); }));
        auto states = param(Column(batch.sleeps, [](const SleepItem &s) { return s.state; }));
        ctes.push_back(
            fmt::format("s AS (SELECT u.id FROM unnest({}::bigint[], {}::bigint[], {}::interval[], "
                        "{}::jsonb[]) AS u(id, tok, delay, state) "
                        "WHERE jobq.sleep(u.id, u.tok, now() + u.delay, u.state))",
                        ids, tokens, delays, states));
        selects.push_back("SELECT 's'::text, s.id, NULL::text FROM s");
    }
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
    st.sql = fmt::format("WITH {} SELECT * FROM ({}) AS acks({}, {}, {})", fmt::join(ctes, ", "),
                         fmt::join(selects, " UNION ALL "), settle_column::kKind,
                         settle_column::kId, settle_column::kExtra);
    return st;
}

SettleAcks ParseSettleResult(const PGresult *result) {
    SettleAcks acks;
    if (!result) return acks;
    int kind_column = ColumnNumber(result, settle_column::kKind);
    int id_column = ColumnNumber(result, settle_column::kId);
    int extra_column = ColumnNumber(result, settle_column::kExtra);
    int rows = PQntuples(result);
    for (int i = 0; i < rows; ++i) {
        const char *kind_text = Value(result, i, kind_column);
        const char *id_text = Value(result, i, id_column);
        if (!kind_text || !id_text) continue;
        char kind = kind_text[0];
        int64_t id = std::strtoll(id_text, nullptr, 10);
        const char *extra = Value(result, i, extra_column);
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
            case 'p':
                acks.progressed.insert(id);
                break;
            case 's':
                acks.slept.insert(id);
                break;
            default:
                break;
        }
    }
    return acks;
}

Statement BuildClaimStatement(const std::vector<ClaimRequest> &requests, const std::string &worker,
                              bool durable) {
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
    namespace col = claim_column;
    st.sql = fmt::format(
        "SELECT c.id AS {}, c.queue AS {}, c.payload::text AS {}, c.attempt AS {}, "
        "c.lease_token AS {}, "
        "extract(epoch FROM c.lease_expires_at - clock_timestamp())::float8 AS {}, "
        "c.progress::text AS {}, c.saved_state::text AS {} FROM ",
        col::kId, col::kQueue, col::kPayload, col::kAttempt, col::kToken, col::kLeaseLeft,
        col::kProgress, col::kSavedState);
    if (!durable)
        st.sql +=
            "(SELECT pg_catalog.set_config('synchronous_commit', 'off', true)) AS async(s) "
            "CROSS JOIN ";
    st.sql +=
        "unnest($1::text[], $2::int[], $3::interval[]) WITH ORDINALITY AS q(name, n, lease, "
        "ord) "
        "CROSS JOIN LATERAL jobq.claim(ARRAY[q.name], $4, q.n, q.lease) AS c "
        "ORDER BY q.ord";
    return st;
}

std::vector<ClaimedRow> ParseClaimResult(const PGresult *result) {
    std::vector<ClaimedRow> rows;
    if (!result) return rows;
    namespace col = claim_column;
    int id = ColumnNumber(result, col::kId), queue = ColumnNumber(result, col::kQueue),
        payload = ColumnNumber(result, col::kPayload),
        attempt = ColumnNumber(result, col::kAttempt), token = ColumnNumber(result, col::kToken),
        lease_left = ColumnNumber(result, col::kLeaseLeft),
        progress = ColumnNumber(result, col::kProgress),
        saved_state = ColumnNumber(result, col::kSavedState);
    int n = PQntuples(result);
    rows.reserve(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
        const char *id_text = Value(result, i, id);
        const char *queue_text = Value(result, i, queue);
        const char *token_text = Value(result, i, token);
        if (!id_text || !queue_text || !token_text) continue;  // not a claimed job
        ClaimedRow row;
        row.job.id = std::strtoll(id_text, nullptr, 10);
        row.job.queue = queue_text;
        const char *payload_text = Value(result, i, payload);
        row.job.payload = payload_text ? payload_text : "null";
        const char *attempt_text = Value(result, i, attempt);
        row.job.attempt = attempt_text ? std::atoi(attempt_text) : 0;
        row.job.token = std::strtoll(token_text, nullptr, 10);
        if (const char *p = Value(result, i, progress)) row.job.progress = p;
        if (const char *p = Value(result, i, saved_state)) row.job.saved_state = p;
        const char *left = Value(result, i, lease_left);
        row.lease_left_seconds = left ? std::strtod(left, nullptr) : 0.0;
        rows.push_back(std::move(row));
    }
    return rows;
}

Statement BuildStartupCheck() {
    namespace col = check_column;
    Statement st;
    // pg_has_role raises for a role that does not exist: test it first.
    st.sql = fmt::format(
        "SELECT pg_catalog.to_regnamespace('jobq') IS NOT NULL AS {}, "
        "pg_catalog.to_regrole('jobq_worker') IS NOT NULL AS {}, "
        "CASE WHEN pg_catalog.to_regrole('jobq_worker') IS NULL THEN false "
        "ELSE pg_catalog.pg_has_role(current_user, 'jobq_worker', 'USAGE') END AS {}, "
        "current_user::text AS {}",
        col::kSchema, col::kRole, col::kMember, col::kUser);
    return st;
}

StartupCheck ParseStartupCheck(const PGresult *result) {
    namespace col = check_column;
    StartupCheck check;
    if (!result || PQntuples(result) != 1) return check;
    auto flag = [result](const char *name) {
        const char *v = Value(result, 0, ColumnNumber(result, name));
        return v && v[0] == 't';
    };
    check.schema = flag(col::kSchema);
    check.worker_role = flag(col::kRole);
    check.member = flag(col::kMember);
    const char *user = Value(result, 0, ColumnNumber(result, col::kUser));
    check.user = user ? user : "";
    return check;
}

std::string StartupCheck::Problem() const {
    if (!schema || !worker_role)
        return "jobq is not installed in this database (CREATE EXTENSION jobq)";
    if (!member)
        return fmt::format(
            "role \"{}\" is not a member of jobq_worker (GRANT jobq_worker TO \"{}\")", user, user);
    return "";
}

}  // namespace jobq
