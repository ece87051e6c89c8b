// The library and the SQL of a database can be of different jobq versions:
// a package upgrade restarts the server with the new jobq.so before anyone
// runs ALTER EXTENSION jobq UPDATE in each database. The library keeps
// working under the SQL of every released version (test/t/extension_upgrade.pl);
// the database worker says once, at its start, that the update is due.
#pragma once

namespace jobq::worker {

// Inside a worker transaction (tx.h BeginWork): logs a WARNING naming the
// command to run when the database's jobq SQL is not the library's version.
void WarnIfSqlVersionDiffers(const char *dbname);

}  // namespace jobq::worker
