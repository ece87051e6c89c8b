// The job document handed to handlers.
#include "job.h"

#include <fmt/format.h>

#include "json_text.h"

namespace jobq {

std::string JobDocument(const ClaimedJob &job) {
    // The payload is jsonb output from the server: valid JSON already.
    return fmt::format("{{\"id\":{},\"queue\":{},\"attempt\":{},\"payload\":{}}}", job.id,
                       JsonQuote(job.queue), job.attempt,
                       job.payload.empty() ? "null" : job.payload);
}

}  // namespace jobq
