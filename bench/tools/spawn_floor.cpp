// spawn_floor: the machine's floor for W4. Starts the `stamp` handler N
// times, one at a time, the way the runner does (glibc's posix_spawn is
// clone(CLONE_VM | CLONE_VFORK) + execve, like the runner's exec handler),
// and prints, per start, the milliseconds from just before the spawn to
// stamp's first instruction (CLOCK_REALTIME, the clock stamp writes).
//
//   spawn_floor STAMP_BINARY STAMP_FILE N
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

extern char **environ;

namespace {

long long NowNanos() {
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<long long>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

}  // namespace

int main(int argc, char **argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: spawn_floor STAMP_BINARY STAMP_FILE N\n");
        return 2;
    }
    int n = std::atoi(argv[3]);
    std::map<std::string, long long> started;
    for (int i = 0; i < n; ++i) {
        std::string id = "floor" + std::to_string(i);
        std::string env_id = "JOBQ_JOB_ID=" + id;
        char *child_env[] = {env_id.data(), nullptr};
        char *child_argv[] = {argv[1], argv[2], nullptr};
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", 0, 0);  // stamp drains stdin
        pid_t pid;
        started[id] = NowNanos();
        if (posix_spawn(&pid, argv[1], &actions, nullptr, child_argv, child_env) != 0) return 1;
        posix_spawn_file_actions_destroy(&actions);
        waitpid(pid, nullptr, 0);
        usleep(10000);  // one start at a time, like W4's 100 jobs/s
    }
    FILE *f = std::fopen(argv[2], "r");
    if (f == nullptr) return 1;
    char id[64];
    long long at;
    while (std::fscanf(f, "%63s %lld", id, &at) == 2) {
        auto it = started.find(id);
        if (it != started.end()) std::printf("%.3f\n", (at - it->second) / 1e6);
    }
    std::fclose(f);
    return 0;
}
