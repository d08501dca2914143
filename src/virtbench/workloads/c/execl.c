/*
 * execl.c - Execl Throughput (virtbench workload).
 *
 * Usage: execl DURATION
 * The program replaces itself (execv of its own path) again and again, carrying the
 * count of instances so far and the monotonic start time (ns) of the first instance in
 * its arguments:  execl DURATION COUNT START_NS.  The instance that finds DURATION
 * seconds passed since the start prints the count of instances that ran.
 * Output: COUNT|<instances>|1|lps|<elapsed since the first instance started>
 *
 * Exec cost grows with what the kernel and the dynamic loader must map and relocate,
 * so the binary must not be a toy: like the classic benchmark it carries an 8 KiB
 * zero-initialised buffer and a real but never-run routine (below, a small word
 * frequency / text report tool using ~30 libc functions), which makes this binary the
 * size of a typical small C utility linked with libc (about 20-25 KB with gcc -O3 on
 * x86-64).  The routine only runs with the --report option, which the benchmark never
 * passes; it is reachable, so the compiler keeps it.
 */
#include "vb.h"

#include <ctype.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>

/* ------------------------------------------------------------------------- */
/* Dead weight: a text report tool that the timed path never calls.          */
/* ------------------------------------------------------------------------- */

#define RPT_BUCKETS 1024
#define RPT_MAXWORD 64

static char rpt_scratch[8 * 1024]; /* zero-initialised (.bss), like the classic binary */

struct rpt_word {
    char *text;
    unsigned long hits;
    struct rpt_word *next;
};

struct rpt_state {
    struct rpt_word *table[RPT_BUCKETS];
    unsigned long words, lines, bytes, longest;
    int out_fd;
    volatile sig_atomic_t stop;
};

static struct rpt_state *rpt_current;

static unsigned rpt_hash(const char *s)
{
    unsigned h = 2166136261u;
    while (*s) {
        h ^= (unsigned char)*s++;
        h *= 16777619u;
    }
    return h % RPT_BUCKETS;
}

static void rpt_on_signal(int sig)
{
    (void)sig;
    if (rpt_current)
        rpt_current->stop = 1;
}

static int rpt_add(struct rpt_state *st, const char *word)
{
    unsigned h = rpt_hash(word);
    struct rpt_word *w;
    for (w = st->table[h]; w; w = w->next) {
        if (strcmp(w->text, word) == 0) {
            w->hits++;
            return 0;
        }
    }
    w = malloc(sizeof *w);
    if (!w)
        return -1;
    w->text = strdup(word);
    if (!w->text) {
        free(w);
        return -1;
    }
    w->hits = 1;
    w->next = st->table[h];
    st->table[h] = w;
    st->words++;
    if (strlen(word) > st->longest)
        st->longest = strlen(word);
    return 0;
}

static int rpt_scan_line(struct rpt_state *st, const char *line)
{
    char word[RPT_MAXWORD];
    size_t n = 0;
    const char *p;
    for (p = line;; p++) {
        if (*p && (isalnum((unsigned char)*p) || *p == '\'' || *p == '-')) {
            if (n + 1 < sizeof word)
                word[n++] = (char)tolower((unsigned char)*p);
            continue;
        }
        if (n) {
            word[n] = '\0';
            if (rpt_add(st, word) != 0)
                return -1;
            n = 0;
        }
        if (!*p)
            break;
    }
    st->lines++;
    st->bytes += strlen(line);
    return 0;
}

static int rpt_compare(const void *a, const void *b)
{
    const struct rpt_word *x = *(const struct rpt_word *const *)a;
    const struct rpt_word *y = *(const struct rpt_word *const *)b;
    if (x->hits != y->hits)
        return x->hits < y->hits ? 1 : -1;
    return strcmp(x->text, y->text);
}

static struct rpt_word **rpt_sorted(struct rpt_state *st)
{
    struct rpt_word **all = calloc(st->words ? st->words : 1, sizeof *all);
    unsigned long i = 0;
    unsigned b;
    struct rpt_word *w;
    if (!all)
        return NULL;
    for (b = 0; b < RPT_BUCKETS; b++)
        for (w = st->table[b]; w; w = w->next)
            all[i++] = w;
    qsort(all, st->words, sizeof *all, rpt_compare);
    return all;
}

static void rpt_bar(FILE *out, unsigned long hits, unsigned long top)
{
    int width = top ? (int)(40.0 * (double)hits / (double)top + 0.5) : 0;
    int i;
    fputc('|', out);
    for (i = 0; i < width; i++)
        fputc('#', out);
    fputc('\n', out);
}

static int rpt_write_copy(struct rpt_state *st, const char *path, const char *text)
{
    size_t left = strlen(text);
    st->out_fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (st->out_fd < 0) {
        perror(path);
        return -1;
    }
    while (left > 0) {
        ssize_t n = write(st->out_fd, text, left);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("write");
            close(st->out_fd);
            return -1;
        }
        text += n;
        left -= (size_t)n;
    }
    return close(st->out_fd);
}

static int rpt_filter(const char *command, const char *text)
{
    int fds[2], status = 0;
    pid_t pid;
    if (pipe(fds) != 0)
        return -1;
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(fds[0], 0);
        close(fds[0]);
        close(fds[1]);
        execl("/bin/sh", "sh", "-c", command, (char *)NULL);
        _exit(127);
    }
    close(fds[0]);
    signal(SIGPIPE, SIG_IGN);
    if (write(fds[1], text, strlen(text)) < 0)
        perror("pipe write");
    close(fds[1]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int rpt_run(int argc, char **argv)
{
    struct rpt_state *st = calloc(1, sizeof *st);
    struct rpt_word **sorted;
    struct stat sb;
    char line[1024];
    const char *input = argc > 2 ? argv[2] : "-";
    unsigned long i, top_n = argc > 3 ? strtoul(argv[3], NULL, 10) : 20;
    FILE *in;
    time_t now = time(NULL);
    char stamp[64];

    if (!st)
        return 1;
    rpt_current = st;
    signal(SIGINT, rpt_on_signal);
    signal(SIGALRM, rpt_on_signal);
    alarm(300);
    in = strcmp(input, "-") == 0 ? stdin : fopen(input, "r");
    if (!in) {
        perror(input);
        return 1;
    }
    if (in != stdin && fstat(fileno(in), &sb) == 0)
        fprintf(stderr, "reading %s (%lld bytes)\n", input, (long long)sb.st_size);
    while (!st->stop && fgets(line, sizeof line, in)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (rpt_scan_line(st, line) != 0) {
            fprintf(stderr, "out of memory after %lu lines\n", st->lines);
            return 1;
        }
    }
    if (in != stdin)
        fclose(in);
    sorted = rpt_sorted(st);
    if (!sorted)
        return 1;
    strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", localtime(&now));
    printf("word report %s: %lu lines, %lu bytes, %lu distinct words, longest %lu\n", stamp,
           st->lines, st->bytes, st->words, st->longest);
    for (i = 0; i < st->words && i < top_n; i++) {
        printf("%4lu %-*s %8lu ", i + 1, (int)st->longest, sorted[i]->text, sorted[i]->hits);
        rpt_bar(stdout, sorted[i]->hits, sorted[0]->hits);
    }
    snprintf(rpt_scratch, sizeof rpt_scratch, "%lu %lu %lu\n", st->lines, st->words, st->bytes);
    if (getenv("REPORT_COPY"))
        rpt_write_copy(st, getenv("REPORT_COPY"), rpt_scratch);
    if (getenv("REPORT_FILTER"))
        return rpt_filter(getenv("REPORT_FILTER"), rpt_scratch) == 0 ? 0 : 1;
    for (i = 0; i < st->words; i++) {
        free(sorted[i]->text);
        free(sorted[i]);
    }
    free(sorted);
    free(st);
    return fflush(stdout) == 0 ? 0 : 1;
}

/* ------------------------------------------------------------------------- */
/* The benchmark.                                                            */
/* ------------------------------------------------------------------------- */

static unsigned long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

static unsigned long long parse_ull(const char *text, const char *what)
{
    char *end = NULL;
    unsigned long long v;
    errno = 0;
    v = strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0')
        vb_die("bad %s '%s'", what, text);
    return v;
}

int main(int argc, char **argv)
{
    unsigned long long start, now;
    unsigned long count;
    double duration, elapsed;
    char count_s[32], start_s[32];
    const char *self;

    vb_init(argv[0]);
    if (argc >= 2 && strcmp(argv[1], "--report") == 0)
        return rpt_run(argc, argv);
    if (argc == 2) { /* the first instance */
        start = now_ns();
        count = 0;
    } else if (argc == 4) { /* an exec'd instance */
        count = (unsigned long)parse_ull(argv[2], "count");
        start = parse_ull(argv[3], "start time");
    } else {
        vb_die("usage: %s DURATION", argv[0]);
        return 2;
    }
    duration = vb_parse_seconds(argv[1]);
    count++; /* this instance */
    now = now_ns();
    elapsed = (double)(now - start) * 1e-9;
    if (elapsed >= duration) {
        vb_report_count(count, 1, "lps", elapsed);
        return 0;
    }
    snprintf(count_s, sizeof count_s, "%lu", count);
    snprintf(start_s, sizeof start_s, "%llu", start);
    self = strchr(argv[0], '/') ? argv[0] : "/proc/self/exe";
    execl(self, argv[0], argv[1], count_s, start_s, (char *)NULL);
    vb_die("exec %s failed at instance %lu: %s", self, count, strerror(errno));
    return 2;
}
