#include "worker/control.h"
extern "C" {
#include "storage/ipc.h"
}
extern "C" void jobq_handler_worker_main(Datum) { proc_exit(0); }
