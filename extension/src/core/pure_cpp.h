// Included by every header in core/: core is plain C++ that never sees a
// Postgres header, so it can be unit-tested without a server and can never
// longjmp. Including a server header first trips this assertion.
#pragma once

#ifdef POSTGRES_H
static_assert(false, "extension/src/core must not include PostgreSQL server headers");
#endif
