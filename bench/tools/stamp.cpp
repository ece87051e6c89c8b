// stamp: exec handler for benchmarks W4/W4s. Appends "JOB_ID NANOS\n"
// (CLOCK_REALTIME at start, the clock the producer and Postgres use) to the
// file named by argv[1], then drains stdin (the job document) and exits 0.
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

int main(int argc, char **argv) {
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (argc < 2) return 2;
    const char *id = std::getenv("JOBQ_JOB_ID");
    char line[96];
    int n = std::snprintf(line, sizeof line, "%s %lld\n", id ? id : "?",
                          static_cast<long long>(ts.tv_sec) * 1000000000LL + ts.tv_nsec);
    int fd = open(argv[1], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return 1;
    if (write(fd, line, static_cast<size_t>(n)) != n) return 1;
    close(fd);
    char buf[4096];
    while (read(0, buf, sizeof buf) > 0) {
    }
    return 0;
}
