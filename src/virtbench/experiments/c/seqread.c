/*
 * virtbench seqread: write a large file, then time one sequential read of it.
 *
 *   seqread write PATH BYTES BLOCK
 *       create PATH, write BYTES in BLOCK-byte writes, fsync, close (timed, reported)
 *   seqread read PATH BLOCK MODE
 *       MODE buffered  plain read(2) through the page cache
 *            fadvise   posix_fadvise(DONTNEED) on the whole file first, then buffered
 *            direct    O_DIRECT: the page cache is bypassed
 *       Before and after the timed loop the file's page-cache residency is measured with
 *       mincore(2), so the report says whether the read came from the cache.
 *
 *   seqread run PATH BYTES BLOCK MODE
 *       write, then read (MODE fadvise or direct keeps the cache out without root), then
 *       remove PATH: the fixed-work form other experiments run in their instances
 *
 * Output: key=value lines. Exit 3 with "direct=unsupported" when O_DIRECT is refused
 * (tmpfs, some FUSE file systems).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *path)
{
    fprintf(stderr, "seqread: %s %s: %s\n", what, path, strerror(errno));
    exit(1);
}

static long long parse_ll(const char *s, const char *what)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || end == s || v <= 0) {
        fprintf(stderr, "seqread: bad %s '%s'\n", what, s);
        exit(2);
    }
    return v;
}

static void *aligned_buffer(size_t size)
{
    void *p = NULL;
    if (posix_memalign(&p, 4096, size) != 0) {
        fprintf(stderr, "seqread: out of memory for a %zu-byte buffer\n", size);
        exit(1);
    }
    return p;
}

/* Pages of `fd` (size `bytes`) resident in the page cache, counted 1 GiB at a time. */
static long long resident_pages(int fd, long long bytes, long long *total)
{
    long page = sysconf(_SC_PAGESIZE);
    const long long chunk = 1LL << 30;
    long long resident = 0;
    *total = (bytes + page - 1) / page;
    unsigned char *vec = malloc((size_t)(chunk / page) + 1);
    if (!vec)
        return -1;
    for (long long off = 0; off < bytes; off += chunk) {
        long long len = bytes - off < chunk ? bytes - off : chunk;
        void *map = mmap(NULL, (size_t)len, PROT_READ, MAP_SHARED, fd, (off_t)off);
        if (map == MAP_FAILED) {
            free(vec);
            return -1;
        }
        long long pages = (len + page - 1) / page;
        if (mincore(map, (size_t)len, vec) != 0) {
            munmap(map, (size_t)len);
            free(vec);
            return -1;
        }
        for (long long i = 0; i < pages; i++)
            resident += vec[i] & 1;
        munmap(map, (size_t)len);
    }
    free(vec);
    return resident;
}

static int do_write(const char *path, long long bytes, long long block)
{
    char *buf = aligned_buffer((size_t)block);
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (long long i = 0; i < block; i++) { /* incompressible, non-zero data */
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf[i] = (char)(x | 1);
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        die("cannot create", path);
    double t0 = now();
    for (long long left = bytes; left > 0;) {
        size_t n = (size_t)(left < block ? left : block);
        ssize_t w = write(fd, buf, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            die("cannot write", path);
        }
        if (w == 0) {
            errno = ENOSPC;
            die("cannot write", path);
        }
        left -= w;
    }
    if (fsync(fd) != 0)
        die("cannot fsync", path);
    double t1 = now();
    close(fd);
    printf("program=virtbench-seqread\nversion=1\nphase=write\n");
    printf("bytes_written=%lld\nseconds_write=%.9f\n", bytes, t1 - t0);
    return 0;
}

static int do_read(const char *path, long long block, const char *mode)
{
    int direct = !strcmp(mode, "direct");
    int fadvise = !strcmp(mode, "fadvise");
    if (!direct && !fadvise && strcmp(mode, "buffered")) {
        fprintf(stderr, "seqread: mode must be buffered, fadvise or direct\n");
        return 2;
    }
    int fd = open(path, O_RDONLY | (direct ? O_DIRECT : 0));
    if (fd < 0) {
        if (direct && errno == EINVAL) {
            printf("program=virtbench-seqread\nversion=1\nphase=read\ndirect=unsupported\n");
            return 3;
        }
        die("cannot open", path);
    }
    struct stat st;
    if (fstat(fd, &st) != 0)
        die("cannot stat", path);
    long long size = (long long)st.st_size;
    if (fadvise) {
        int rc = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        if (rc != 0) {
            errno = rc;
            die("posix_fadvise failed on", path);
        }
    }
    long long total_pages = 0;
    long long before = resident_pages(fd, size, &total_pages);
    char *buf = aligned_buffer((size_t)block);
    long long got = 0;
    double t0 = now();
    for (;;) {
        ssize_t r = read(fd, buf, (size_t)block);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (direct && errno == EINVAL && got == 0) {
                printf("program=virtbench-seqread\nversion=1\nphase=read\ndirect=unsupported\n");
                return 3;
            }
            die("cannot read", path);
        }
        if (r == 0)
            break;
        got += r;
    }
    double t1 = now();
    long long after = resident_pages(fd, size, &total_pages);
    close(fd);
    printf("program=virtbench-seqread\nversion=1\nphase=read\n");
    printf("mode=%s\nbytes_read=%lld\nseconds_read=%.9f\n", mode, got, t1 - t0);
    printf("pages_total=%lld\npages_resident_before=%lld\npages_resident_after=%lld\n",
           total_pages, before, after);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 5 && !strcmp(argv[1], "write"))
        return do_write(argv[2], parse_ll(argv[3], "size"), parse_ll(argv[4], "block"));
    if (argc == 5 && !strcmp(argv[1], "read"))
        return do_read(argv[2], parse_ll(argv[3], "block"), argv[4]);
    if (argc == 6 && !strcmp(argv[1], "run")) {
        long long block = parse_ll(argv[4], "block");
        int rc = do_write(argv[2], parse_ll(argv[3], "size"), block);
        if (rc == 0)
            rc = do_read(argv[2], block, argv[5]);
        unlink(argv[2]);
        return rc;
    }
    fprintf(stderr, "usage: seqread write PATH BYTES BLOCK | seqread read PATH BLOCK MODE"
                    " | seqread run PATH BYTES BLOCK MODE\n");
    return 2;
}
