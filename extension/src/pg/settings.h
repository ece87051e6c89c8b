// Core settings (GUCs) of jobq; the worker's own settings live in worker/.
#pragma once

extern "C" {
#include "postgres.h"
}

namespace jobq::pg {

// jobq.max_payload_size: largest accepted payload, in bytes of jsonb.
extern int max_payload_size;

void DefineCoreSettings();

}  // namespace jobq::pg
