/*
 * virtbench postmark: the Postmark 1.5 small-file transaction workload, written for
 * virtbench (not derived from NetApp's source).
 *
 * Semantics (Postmark 1.5, J. Katcher, NetApp TR3022):
 *   1. create an initial pool of --files files, sizes uniform in [MIN, MAX) bytes, spread
 *      over --subdirs subdirectories (when > 1), each written in --write-block chunks;
 *   2. run --transactions transactions; each pairs
 *        - a read (whole file, --read-block chunks) or an append (a random amount, never
 *          past MAX) of a random existing file, chosen by --bias-read (0..10 out of 10;
 *          -1 disables this half), and
 *        - a create of a new file or a delete of a random existing file, chosen by
 *          --bias-create (0..10; -1 disables);
 *   3. delete every remaining file.
 * The random stream is MT19937 seeded like Postmark 1.5 (Knuth's 69069 generator fills the
 * state), and it is consumed in the same order, so a given seed performs the same sequence
 * of operations as Postmark 1.5 with that seed.
 *
 * Differences from Postmark 1.5, all deliberate:
 *   - times come from CLOCK_MONOTONIC in nanoseconds (Postmark uses time(), 1 s resolution);
 *   - byte counters are 64-bit integers (Postmark accumulates them in a float);
 *   - an I/O error is fatal (exit 1 with a message), Postmark prints and carries on;
 *   - output is key=value lines for a parser, not a report for people.
 *
 * Usage: postmark --dir DIR [--files N] [--min B] [--max B] [--transactions N]
 *                 [--subdirs N] [--read-block B] [--write-block B] [--bias-read N]
 *                 [--bias-create N] [--buffered 0|1] [--seed N]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

/* ---- MT19937 (Matsumoto & Nishimura 1998), 32-bit output ---------------------------- */
enum { MT_N = 624, MT_M = 397 };
static uint32_t mt_state[MT_N];
static int mt_pos = MT_N;

static void mt_seed_knuth(uint32_t s)
{
    /* Each state word takes the high halves of two successive 69069*x+1 values. */
    for (int i = 0; i < MT_N; i++) {
        uint32_t hi = s & 0xffff0000u;
        s = 69069u * s + 1u;
        uint32_t lo = (s & 0xffff0000u) >> 16;
        s = 69069u * s + 1u;
        mt_state[i] = hi | lo;
    }
    mt_pos = MT_N;
}

static void mt_refill(void)
{
    for (int i = 0; i < MT_N; i++) {
        uint32_t x = (mt_state[i] & 0x80000000u) | (mt_state[(i + 1) % MT_N] & 0x7fffffffu);
        uint32_t next = mt_state[(i + MT_M) % MT_N] ^ (x >> 1);
        if (x & 1u)
            next ^= 0x9908b0dfu;
        mt_state[i] = next;
    }
    mt_pos = 0;
}

static uint32_t mt_next(void)
{
    if (mt_pos >= MT_N)
        mt_refill();
    uint32_t y = mt_state[mt_pos++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

/* A random integer in [0, n); draws nothing when n <= 0 (as Postmark's RND macro). */
static long rnd(long n)
{
    return n > 0 ? (long)(mt_next() % (uint32_t)n) : 0;
}

/* ---- settings ------------------------------------------------------------------------- */
static long n_files = 500, size_min = 500, size_max = 10000, n_transactions = 500;
static long n_subdirs = 0, read_block = 512, write_block = 512;
static long bias_read = 5, bias_create = 5, buffered = 1, seed = 42;
static const char *workdir = NULL;

/* ---- state ---------------------------------------------------------------------------- */
typedef struct {
    long size;   /* 0: free slot */
    long number; /* file name: the creation counter at creation time */
    int subdir;  /* -1: no subdirectory */
} slot_t;

static slot_t *slots;     /* 2 * n_files slots, as Postmark's table */
static long n_slots;
static long next_free;    /* hint: next slot to try for a new file */
static char *source;      /* 2 * size_max bytes of printable random text */
static char *read_buf;

static long created, deleted, files_read, appended;
static uint64_t bytes_read, bytes_written;

static void die(const char *what, const char *path)
{
    fprintf(stderr, "postmark: %s %s: %s\n", what, path ? path : "", strerror(errno));
    exit(1);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void slot_path(const slot_t *s, char *buf, size_t len)
{
    if (s->subdir >= 0)
        snprintf(buf, len, "s%d/%ld", s->subdir, s->number);
    else
        snprintf(buf, len, "%ld", s->number);
}

static long free_slot(void)
{
    if (next_free < n_slots && slots[next_free].size == 0)
        return next_free++;
    for (long i = 0; i < n_slots; i++)
        if (slots[i].size == 0) {
            next_free = i + 1;
            return i;
        }
    return -1;
}

static long used_slot(void)
{
    long i;
    do
        i = rnd(n_slots);
    while (slots[i].size == 0);
    return i;
}

/* Write `size` bytes from the source text in write_block chunks, then close. */
static void write_data(FILE *fp, int fd, long size, const char *path)
{
    long off = 0, left = size;
    while (left > 0) {
        long chunk = left >= write_block ? write_block : left;
        if (fp) {
            if (fwrite(source + off, (size_t)chunk, 1, fp) != 1)
                die("cannot write", path);
        } else {
            ssize_t w = write(fd, source + off, (size_t)chunk);
            if (w != (ssize_t)chunk) {
                if (w >= 0)
                    errno = ENOSPC;
                die("cannot write", path);
            }
        }
        off += chunk;
        left -= chunk;
    }
    if (fp) {
        if (fclose(fp) != 0)
            die("cannot close", path);
    } else if (close(fd) != 0) {
        die("cannot close", path);
    }
    bytes_written += (uint64_t)size;
}

static void create_file(void)
{
    long i = free_slot();
    if (i < 0)
        return; /* table full: Postmark silently skips the create */
    slot_t *s = &slots[i];
    s->subdir = n_subdirs > 1 ? (int)rnd(n_subdirs) : -1;
    s->number = ++created;
    s->size = size_min + rnd(size_max - size_min);
    char path[64];
    slot_path(s, path, sizeof path);
    FILE *fp = NULL;
    int fd = -1;
    if (buffered) {
        fp = fopen(path, "w");
        if (!fp)
            die("cannot create", path);
    } else {
        fd = open(path, O_RDWR | O_CREAT, 0644);
        if (fd < 0)
            die("cannot create", path);
    }
    write_data(fp, fd, s->size, path);
}

static void delete_file(long i)
{
    slot_t *s = &slots[i];
    if (s->size == 0)
        return;
    char path[64];
    slot_path(s, path, sizeof path);
    if (unlink(path) != 0)
        die("cannot delete", path);
    s->size = 0;
    deleted++;
}

static void read_file(long i)
{
    slot_t *s = &slots[i];
    char path[64];
    slot_path(s, path, sizeof path);
    long left = s->size;
    if (buffered) {
        FILE *fp = fopen(path, "r");
        if (!fp)
            die("cannot open", path);
        while (left > 0) {
            long chunk = left >= read_block ? read_block : left;
            if (fread(read_buf, (size_t)chunk, 1, fp) != 1)
                die("short read from", path);
            left -= chunk;
        }
        fclose(fp);
    } else {
        int fd = open(path, O_RDONLY);
        if (fd < 0)
            die("cannot open", path);
        while (left > 0) {
            long chunk = left >= read_block ? read_block : left;
            ssize_t r = read(fd, read_buf, (size_t)chunk);
            if (r != (ssize_t)chunk) {
                if (r >= 0)
                    errno = EIO;
                die("short read from", path);
            }
            left -= chunk;
        }
        close(fd);
    }
    bytes_read += (uint64_t)s->size;
    files_read++;
}

static void append_file(long i)
{
    slot_t *s = &slots[i];
    if (s->size >= size_max)
        return; /* already at the maximum: Postmark appends nothing and counts nothing */
    char path[64];
    slot_path(s, path, sizeof path);
    FILE *fp = NULL;
    int fd = -1;
    if (buffered) {
        fp = fopen(path, "a");
        if (!fp)
            die("cannot open", path);
    } else {
        fd = open(path, O_RDWR | O_APPEND);
        if (fd < 0)
            die("cannot open", path);
    }
    long amount = rnd(size_max - s->size) + 1;
    write_data(fp, fd, amount, path);
    s->size += amount;
    appended++;
}

/* ---- command line --------------------------------------------------------------------- */
static void usage(const char *msg)
{
    fprintf(stderr, "postmark: %s\n", msg);
    exit(2);
}

static long num(const char *opt, const char *v, long lo, long hi)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || *end || end == v || x < lo || x > hi) {
        fprintf(stderr, "postmark: %s needs an integer in [%ld, %ld], got '%s'\n", opt, lo, hi, v);
        exit(2);
    }
    return x;
}

static void parse_args(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (i + 1 >= argc)
            usage("every option takes a value");
        const char *v = argv[++i];
        if (!strcmp(o, "--dir"))
            workdir = v;
        else if (!strcmp(o, "--files"))
            n_files = num(o, v, 1, 100000000);
        else if (!strcmp(o, "--min"))
            size_min = num(o, v, 1, 1L << 30);
        else if (!strcmp(o, "--max"))
            size_max = num(o, v, 1, 1L << 30);
        else if (!strcmp(o, "--transactions"))
            n_transactions = num(o, v, 0, 2000000000);
        else if (!strcmp(o, "--subdirs"))
            n_subdirs = num(o, v, 0, 1000000);
        else if (!strcmp(o, "--read-block"))
            read_block = num(o, v, 1, 1L << 30);
        else if (!strcmp(o, "--write-block"))
            write_block = num(o, v, 1, 1L << 30);
        else if (!strcmp(o, "--bias-read"))
            bias_read = num(o, v, -1, 10);
        else if (!strcmp(o, "--bias-create"))
            bias_create = num(o, v, -1, 10);
        else if (!strcmp(o, "--buffered"))
            buffered = num(o, v, 0, 1);
        else if (!strcmp(o, "--seed"))
            seed = num(o, v, 0, 4294967295L);
        else {
            fprintf(stderr, "postmark: unknown option %s\n", o);
            exit(2);
        }
    }
    if (!workdir)
        usage("--dir is required");
    if (size_max < size_min)
        usage("--max must be >= --min");
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    if (chdir(workdir) != 0)
        die("cannot enter", workdir);

    mt_seed_knuth((uint32_t)seed);
    source = malloc((size_t)size_max * 2);
    read_buf = malloc((size_t)read_block);
    n_slots = n_files * 2;
    slots = calloc((size_t)n_slots, sizeof *slots);
    if (!source || !read_buf || !slots) {
        fprintf(stderr, "postmark: out of memory\n");
        return 1;
    }
    for (long i = 0; i < size_max * 2; i++)
        source[i] = (char)(32 + rnd(95));

    if (n_subdirs > 1)
        for (long i = 0; i < n_subdirs; i++) {
            char d[32];
            snprintf(d, sizeof d, "s%ld", i);
            if (mkdir(d, 0700) != 0 && errno != EEXIST)
                die("cannot create directory", d);
        }

    double t0 = now();
    for (long i = 0; i < n_files; i++)
        create_file();
    double t1 = now();
    long done = 0;
    int out_of_files = 0;
    for (; done < n_transactions; done++) {
        if (created == deleted) {
            out_of_files = 1;
            break;
        }
        if (bias_read != -1) {
            if (rnd(10) < bias_read)
                read_file(used_slot());
            else
                append_file(used_slot());
        }
        if (bias_create != -1) {
            if (rnd(10) < bias_create)
                create_file();
            else
                delete_file(used_slot());
        }
    }
    double t2 = now();
    long deleted_before = deleted;
    for (long i = 0; i < n_slots; i++)
        delete_file(i);
    double t3 = now();

    if (n_subdirs > 1)
        for (long i = 0; i < n_subdirs; i++) {
            char d[32];
            snprintf(d, sizeof d, "s%ld", i);
            rmdir(d);
        }

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("program=virtbench-postmark\n");
    printf("version=1\n");
    printf("status=%s\n", out_of_files ? "out-of-files" : "ok");
    printf("seconds_total=%.9f\n", t3 - t0);
    printf("seconds_create=%.9f\n", t1 - t0);
    printf("seconds_transactions=%.9f\n", t2 - t1);
    printf("seconds_delete=%.9f\n", t3 - t2);
    printf("transactions=%ld\n", done);
    printf("files_initial=%ld\n", n_files);
    printf("files_created=%ld\n", created);
    printf("files_read=%ld\n", files_read);
    printf("files_appended=%ld\n", appended);
    printf("files_deleted=%ld\n", deleted);
    printf("files_deleted_alone=%ld\n", deleted - deleted_before);
    printf("bytes_read=%llu\n", (unsigned long long)bytes_read);
    printf("bytes_written=%llu\n", (unsigned long long)bytes_written);
    printf("user_seconds=%.6f\n", (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6);
    printf("system_seconds=%.6f\n", (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6);
    return 0;
}
