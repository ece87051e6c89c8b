// The claim of one queue without SPI (claim_direct.cpp).
//
// C-style on purpose (see pg/guard.h).
#pragma once

extern "C" {
#include "postgres.h"
#include "fmgr.h"
}

namespace jobq::store {

// Claims up to `limit` due jobs of one queue (a text Datum) for `worker`
// (text), leased for `lease` (an interval), all under one new lease token,
// and appends them to fcinfo's materialized result in the claim's columns.
// Returns how many; -1, having claimed nothing, when jobq.job carries rules
// jobq did not put there (the caller runs the SQL claim then).
int ClaimDirect(FunctionCallInfo fcinfo, Datum queue_text, Datum worker, Datum lease, int limit);

}  // namespace jobq::store
