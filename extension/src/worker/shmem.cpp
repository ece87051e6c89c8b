// Shared memory of the workers: sized from jobq.max_databases, created once
// by the postmaster (and again after a crash restart, when every worker is
// gone anyway).
#include "worker/shmem.h"

#include "worker/gucs.h"

extern "C" {
#include "storage/ipc.h"
#include "storage/shmem.h"
}

namespace jobq::worker {

SharedState *shared = nullptr;

namespace {
Size SharedSize() {
    return add_size(offsetof(SharedState, slots), mul_size(sizeof(DbSlot), max_databases));
}
}  // namespace

DbSlot *FindSlot(Oid dboid) {
    if (shared == nullptr || !OidIsValid(dboid)) return nullptr;
    for (int i = 0; i < shared->nslots; ++i)
        if (shared->slots[i].state != kSlotFree && shared->slots[i].dboid == dboid)
            return &shared->slots[i];
    return nullptr;
}

void RequestSharedMemory() {
    RequestAddinShmemSpace(SharedSize());
    RequestNamedLWLockTranche("jobq", 1);
}

void InitSharedMemory() {
    bool found = false;
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    auto *state = static_cast<SharedState *>(ShmemInitStruct("jobq", SharedSize(), &found));
    if (!found) {
        memset(state, 0, SharedSize());
        state->lock = &(GetNamedLWLockTranche("jobq"))->lock;
        state->nslots = max_databases;
    }
    LWLockRelease(AddinShmemInitLock);
    shared = state;
}

}  // namespace jobq::worker
