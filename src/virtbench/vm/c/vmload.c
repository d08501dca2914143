/* vmload: the migration guest's workload.
 *
 * Usage: vmload DIRTY_MB_PER_S WSS_MB INTERVAL_MS
 *
 * Fills a working set of WSS_MB with non-zero data (so migration must send every page), then
 * loops: it dirties pages of the working set round-robin at DIRTY_MB_PER_S (one write per
 * 4 KiB page, paced by the guest's monotonic clock), does fixed chunks of integer work, and
 * every INTERVAL_MS writes one progress line to stdout:
 *
 *     P <nonce> <seq> <work chunks> <pages dirtied>
 *
 * <nonce> is random per start, <seq> increases by one per line: the host checks both to prove
 * the guest kept running (no reboot, no restart) across a migration.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

#define PAGE 4096UL
#define CHUNK 2000

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: vmload DIRTY_MB_PER_S WSS_MB INTERVAL_MS\n");
        return 2;
    }
    double rate_mb = atof(argv[1]);
    unsigned long wss_mb = strtoul(argv[2], NULL, 10);
    double interval = atof(argv[3]) / 1000.0;
    if (wss_mb < 1) wss_mb = 1;
    unsigned long npages = wss_mb * 1024 * 1024 / PAGE;
    unsigned char *buf = mmap(NULL, npages * PAGE, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buf == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    uint32_t nonce = 0;
    int fd = open("/dev/urandom", O_RDONLY);
    if (fd >= 0) {
        if (read(fd, &nonce, sizeof nonce) != sizeof nonce) nonce = 0;
        close(fd);
    }
    nonce ^= (uint32_t)(now() * 1e6);
    for (unsigned long i = 0; i < npages * PAGE; i += 8)
        *(uint64_t *)(buf + i) = (i * 0x9E3779B97F4A7C15ULL) | 1;

    double pages_per_s = rate_mb * 1024 * 1024 / PAGE;
    double t0 = now(), next = t0 + interval;
    unsigned long long seq = 0, work = 0, dirtied = 0, pos = 0;
    uint64_t x = nonce | 1;
    char line[128];
    for (;;) {
        double t = now();
        if (pages_per_s > 0) {
            unsigned long long owed = (unsigned long long)(pages_per_s * (t - t0));
            while (dirtied < owed) {
                buf[pos * PAGE + (dirtied & 63) * 8] += 1;
                pos = (pos + 1) % npages;
                dirtied++;
            }
        }
        for (int k = 0; k < CHUNK; k++) x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        work++;
        if (t >= next) {
            int n = snprintf(line, sizeof line, "P %08x %llu %llu %llu\n", nonce, seq++, work,
                             dirtied);
            if (write(1, line, n) < 0) return 1;
            next += interval;
            if (next < t) next = t + interval;
        }
        if (x == 42) buf[0] = 0; /* keep x alive */
    }
}
