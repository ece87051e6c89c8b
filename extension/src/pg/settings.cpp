#include "pg/settings.h"

extern "C" {
#include "utils/guc.h"
}

namespace jobq::pg {

int max_payload_size = 1024 * 1024;

void DefineCoreSettings() {
    DefineCustomIntVariable(
        "jobq.max_payload_size", "Largest job payload accepted by enqueue, in bytes.",
        "Larger payloads are rejected with an error, never truncated.", &max_payload_size,
        1024 * 1024, 16, 64 * 1024 * 1024, PGC_SUSET, GUC_UNIT_BYTE, nullptr, nullptr, nullptr);
}

}  // namespace jobq::pg
