// placeholder, replaced by the database worker
#include "worker/control.h"
extern "C" {
#include "postgres.h"
#include "storage/ipc.h"
}
extern "C" void jobq_db_worker_main(Datum) { proc_exit(0); }
extern "C" void jobq_handler_worker_main(Datum) { proc_exit(0); }
