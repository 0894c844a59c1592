/* kps-collector: a small line collector (TCP or TLS) for tests and benchmarks.
 *
 *   kps-collector --listen HOST:PORT [--port-file F] [--out FILE|-] [--count-file F]
 *                 [--tls-cert C --tls-key K [--tls-client-ca CA] [--client-cn-file F]
 *                  [--tls12] [--tls-no-tickets | --tls-ticket-delay-ms MS]]
 *                 [--no-read] [--rst-after-lines N] [--rcvbuf BYTES] [--quiet]
 *
 * One thread, poll() and non-blocking sockets.  Only complete lines are
 * written out (one write() per read chunk, so lines of concurrent connections
 * never interleave); a trailing partial line of a closed connection is
 * discarded, since its sender cannot have seen it acknowledged as a whole.
 *
 * Closing never loses acknowledged bytes: on SIGTERM/SIGINT and for
 * --rst-after-lines each connection is first shut down in both directions
 * (from then on the kernel answers new data with a reset instead of
 * acknowledging it), then drained, then closed.  --rst-after-lines N: once a
 * connection has N lines, stop reading until its bytes stop arriving (window
 * full or sender idle), then shut down, drain and reset (SO_LINGER 0).
 *
 * TLS 1.3 session tickets (what shows a client that its certificate was
 * accepted): sent right after the handshake by default; --tls-no-tickets
 * sends none; --tls-ticket-delay-ms MS sends one MS after the handshake.
 * --tls12 caps the protocol at TLS 1.2.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#define MAX_CONNS 1000
#define BUF_INIT (64u * 1024)
#define BUF_MAX (16u * 1024 * 1024)
#define READS_PER_EVENT 16      /* fairness between connections */
#define COUNT_FILE_EVERY_MS 10  /* bounded rewrite rate of --count-file */
#define RST_QUIET_MS 50         /* no new bytes for this long: window is full */
#define RST_WAIT_MAX_MS 1000
#define DRAIN_MAX_READS 100000

typedef struct conn_s {
  int fd;
  SSL *ssl;
  int hs_done;
  int want_write;
  unsigned long id;
  char peer[80];
  char *buf;
  size_t len, cap, scanned;
  uint64_t lines;
  int rst_pending;
  int rst_inq;
  uint64_t rst_started, rst_quiet_since;
  uint64_t ticket_at; /* --tls-ticket-delay-ms: when to send the ticket (0: none due) */
} conn_t;

static struct {
  const char *listen, *port_file, *out, *count_file;
  const char *tls_cert, *tls_key, *tls_client_ca, *client_cn_file;
  int no_read, quiet, rcvbuf, tls12, no_tickets;
  uint64_t rst_after, ticket_delay;
} opt;

static conn_t *conns[MAX_CONNS];
static int nconns;
static unsigned long next_id = 1;
static int out_fd = -1;
static SSL_CTX *ssl_ctx;
static uint64_t total_lines, count_written = UINT64_MAX, count_written_at;
static int sig_pipe[2] = {-1, -1};

static uint64_t now_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void say(int always, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(int always, const char *fmt, ...) {
  char line[512];
  va_list ap;
  int n;

  if (opt.quiet && !always) return;
  va_start(ap, fmt);
  n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n > sizeof(line) - 2) n = (int)sizeof(line) - 2;
  line[n++] = '\n';
  fprintf(stderr, "kps-collector: %.*s", n, line);
  fflush(stderr);
}

static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Readers polling the file never see it half written. */
static void write_file_atomic(const char *path, const char *data, size_t len) {
  char tmp[4096];
  int fd;

  snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
  fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    say(1, "cannot write %s: %s", tmp, strerror(errno));
    return;
  }
  if (write_all(fd, data, len) != 0 || close(fd) != 0 || rename(tmp, path) != 0)
    say(1, "cannot write %s: %s", path, strerror(errno));
}

static void update_count_file(int force) {
  char num[32];
  int n;
  uint64_t now;

  if (!opt.count_file || total_lines == count_written) return;
  now = now_ms();
  if (!force && now - count_written_at < COUNT_FILE_EVERY_MS) return;
  n = snprintf(num, sizeof(num), "%llu\n", (unsigned long long)total_lines);
  write_file_atomic(opt.count_file, num, (size_t)n);
  count_written = total_lines;
  count_written_at = now;
}

static const char *ssl_reason(void) {
  static char buf[256];
  unsigned long e = ERR_peek_last_error();
  const char *r = e ? ERR_reason_error_string(e) : NULL;

  snprintf(buf, sizeof(buf), "%s", r ? r : (e ? "unknown" : "no error detail"));
  ERR_clear_error();
  return buf;
}

/* Writes out the complete lines in c->buf and keeps the partial tail. */
static void conn_emit(conn_t *c) {
  char *p = c->buf + c->scanned, *end = c->buf + c->len, *nl, *last = NULL;
  uint64_t n = 0;
  size_t keep;

  while (p < end && (nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
    n++;
    last = nl;
    p = nl + 1;
  }
  c->scanned = c->len;
  if (!last) return;
  if (out_fd >= 0 && write_all(out_fd, c->buf, (size_t)(last + 1 - c->buf)) != 0)
    say(1, "write to output failed: %s", strerror(errno));
  keep = (size_t)(end - (last + 1));
  memmove(c->buf, last + 1, keep);
  c->len = c->scanned = keep;
  c->lines += n;
  total_lines += n;
}

static void conn_free(conn_t *c, const char *how) {
  int i;

  if (c->len > 0) say(0, "conn %lu: discarded %zu bytes of an incomplete line", c->id, c->len);
  say(0, "conn %lu closed: %s (%llu lines)", c->id, how, (unsigned long long)c->lines);
  if (c->ssl) SSL_free(c->ssl);
  close(c->fd);
  free(c->buf);
  for (i = 0; i < nconns; i++) {
    if (conns[i] == c) {
      conns[i] = conns[--nconns];
      break;
    }
  }
  free(c);
}

/* Returns bytes read, 0 at end of stream, -1 on error, -2 when nothing is
 * available right now. */
static int conn_read(conn_t *c) {
  size_t room;

  if (c->len == c->cap) {
    if (c->cap < BUF_MAX) {
      char *nb = realloc(c->buf, c->cap * 2);
      if (!nb) return -1;
      c->buf = nb;
      c->cap *= 2;
    } else { /* absurdly long line: pass it on rather than stall */
      say(1, "conn %lu: line longer than %u bytes, written unterminated", c->id, BUF_MAX);
      if (out_fd >= 0) (void)write_all(out_fd, c->buf, c->len);
      c->len = c->scanned = 0;
    }
  }
  room = c->cap - c->len;
  if (c->ssl) {
    int r, e;
    ERR_clear_error();
    errno = 0;
    r = SSL_read(c->ssl, c->buf + c->len, room > INT32_MAX ? INT32_MAX : (int)room);
    if (r > 0) {
      c->len += (size_t)r;
      c->want_write = 0;
      return r;
    }
    e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ) return -2;
    if (e == SSL_ERROR_WANT_WRITE) {
      c->want_write = 1;
      return -2;
    }
    if (e == SSL_ERROR_ZERO_RETURN) return 0;
    if (e == SSL_ERROR_SYSCALL && ERR_peek_last_error() == 0 && errno == 0) return 0;
    say(0, "conn %lu: tls read: %s", c->id, ssl_reason());
    return -1;
  }
  for (;;) {
    ssize_t r = read(c->fd, c->buf + c->len, room);
    if (r > 0) {
      c->len += (size_t)r;
      return (int)r;
    }
    if (r == 0) return 0;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return -2;
    return -1;
  }
}

/* Shuts both directions (new data is then reset, not acknowledged), reads
 * what the kernel already acknowledged, and closes; rst: with SO_LINGER 0. */
static void conn_drain_close(conn_t *c, int rst) {
  int i, r = 1;

  shutdown(c->fd, SHUT_RDWR);
  if (c->ssl && !c->hs_done) r = 0;
  for (i = 0; r != 0 && i < DRAIN_MAX_READS; i++) {
    r = conn_read(c);
    if (r > 0) conn_emit(c);
    if (r == -1 || r == -2) break;
  }
  if (rst) {
    struct linger lg = {1, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  }
  conn_free(c, rst ? "reset" : "shutdown");
}

static void conn_report_cn(conn_t *c) {
  X509 *peer;
  char cn[256] = "";

  if (!opt.tls_client_ca) return;
  peer = SSL_get1_peer_certificate(c->ssl);
  if (peer) {
    X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, (int)sizeof(cn));
    X509_free(peer);
  }
  if (opt.client_cn_file) {
    char line[300];
    int n = snprintf(line, sizeof(line), "%s\n", cn);
    write_file_atomic(opt.client_cn_file, line, (size_t)n);
  }
  say(!opt.client_cn_file, "conn %lu: client cn=%s", c->id, cn);
}

/* Returns 1 when the connection is still open. */
static int conn_on_event(conn_t *c, short revents) {
  int i, r;

  if (c->ssl && !c->hs_done) {
    int e;
    ERR_clear_error();
    r = SSL_do_handshake(c->ssl);
    if (r != 1) {
      e = SSL_get_error(c->ssl, r);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        c->want_write = e == SSL_ERROR_WANT_WRITE;
        return 1;
      }
      say(0, "conn %lu: tls handshake failed: %s", c->id,
          e == SSL_ERROR_SSL ? ssl_reason() : "connection closed");
      ERR_clear_error();
      conn_free(c, "handshake failed");
      return 0;
    }
    c->hs_done = 1;
    c->want_write = 0;
    say(0, "conn %lu: tls %s", c->id, SSL_get_version(c->ssl));
    conn_report_cn(c);
    if (opt.ticket_delay) c->ticket_at = now_ms() + opt.ticket_delay;
  } else if (!(revents & (POLLIN | POLLOUT | POLLHUP | POLLERR))) {
    return 1;
  }
  for (i = 0; i < READS_PER_EVENT; i++) {
    r = conn_read(c);
    if (r > 0) {
      conn_emit(c);
      if (opt.rst_after && c->lines >= opt.rst_after) {
        c->rst_pending = 1;
        c->rst_inq = -1;
        c->rst_started = c->rst_quiet_since = now_ms();
        say(0, "conn %lu: %llu lines, resetting once the sender stalls", c->id,
            (unsigned long long)c->lines);
        return 1;
      }
      continue;
    }
    if (r == -2) return 1;
    conn_free(c, r == 0 ? "eof" : "error");
    return 0;
  }
  return 1;
}

static void rst_tick(void) {
  uint64_t now = now_ms();
  int i;

  for (i = nconns - 1; i >= 0; i--) {
    conn_t *c = conns[i];
    int inq = 0;
    if (!c->rst_pending) continue;
    if (ioctl(c->fd, FIONREAD, &inq) < 0) inq = -2;
    if (inq != c->rst_inq) {
      c->rst_inq = inq;
      c->rst_quiet_since = now;
    }
    if (now - c->rst_quiet_since >= RST_QUIET_MS || now - c->rst_started >= RST_WAIT_MAX_MS)
      conn_drain_close(c, 1);
  }
}

/* --tls-ticket-delay-ms: sends the session ticket of every connection whose
 * time has come; returns the poll timeout until the next one (-1: none). */
static int ticket_tick(void) {
  uint64_t now = now_ms(), next = UINT64_MAX;
  int i;

  for (i = 0; i < nconns; i++) {
    conn_t *c = conns[i];
    if (!c->ticket_at) continue;
    if (now >= c->ticket_at) {
      c->ticket_at = 0;
      ERR_clear_error();
      if (SSL_new_session_ticket(c->ssl) != 1 || SSL_do_handshake(c->ssl) != 1)
        say(1, "conn %lu: cannot send the session ticket: %s", c->id, ssl_reason());
      else
        say(0, "conn %lu: session ticket sent", c->id);
      continue;
    }
    if (c->ticket_at < next) next = c->ticket_at;
  }
  return next == UINT64_MAX ? -1 : (int)(next - now);
}

static void accept_all(int lfd) {
  for (;;) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char host[INET6_ADDRSTRLEN] = "?", port[8] = "?";
    conn_t *c;
    int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);

    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return; /* EAGAIN, or out of descriptors: try again on the next event */
    }
    if (nconns >= MAX_CONNS || !(c = calloc(1, sizeof(*c)))) {
      say(1, "too many connections, refusing one");
      close(fd);
      continue;
    }
    getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), port, sizeof(port),
                NI_NUMERICHOST | NI_NUMERICSERV);
    c->fd = fd;
    c->id = next_id++;
    snprintf(c->peer, sizeof(c->peer), "%s:%s", host, port);
    c->cap = BUF_INIT;
    c->buf = malloc(c->cap);
    if (ssl_ctx) {
      c->ssl = SSL_new(ssl_ctx);
      if (c->ssl) {
        SSL_set_fd(c->ssl, fd);
        SSL_set_accept_state(c->ssl);
      }
    }
    if (!c->buf || (ssl_ctx && !c->ssl)) {
      say(1, "out of memory, refusing a connection");
      if (c->ssl) SSL_free(c->ssl);
      free(c->buf);
      free(c);
      close(fd);
      continue;
    }
    conns[nconns++] = c;
    say(0, "conn %lu open from %s", c->id, c->peer);
  }
}

static int open_listener(void) {
  char host[256], bound[300], portbuf[16];
  const char *colon = strrchr(opt.listen, ':');
  struct addrinfo hints, *ai = NULL;
  struct sockaddr_storage ss;
  socklen_t sl = sizeof(ss);
  size_t hl;
  int fd, one = 1, rc;

  if (!colon || colon == opt.listen) return -1;
  hl = (size_t)(colon - opt.listen);
  if (hl >= sizeof(host)) return -1;
  memcpy(host, opt.listen, hl);
  host[hl] = 0;
  if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
    memmove(host, host + 1, hl - 2);
    host[hl - 2] = 0;
  }
  memset(&hints, 0, sizeof(hints));
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
  rc = getaddrinfo(host, colon + 1, &hints, &ai);
  if (rc != 0) {
    say(1, "bad --listen address %s: %s", opt.listen, gai_strerror(rc));
    return -1;
  }
  fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) goto fail;
  /* Restarting on the same port must work while old connections linger. */
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (opt.rcvbuf > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &opt.rcvbuf, sizeof(opt.rcvbuf));
  if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 512) != 0) goto fail;
  freeaddrinfo(ai);
  ai = NULL;
  if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) goto fail;
  getnameinfo((struct sockaddr *)&ss, sl, NULL, 0, portbuf, sizeof(portbuf), NI_NUMERICSERV);
  snprintf(bound, sizeof(bound), "%s\n", portbuf);
  if (opt.port_file) write_file_atomic(opt.port_file, bound, strlen(bound));
  say(0, "listening on %s port %s%s", host, portbuf, ssl_ctx ? " (tls)" : "");
  return fd;

fail:
  say(1, "cannot listen on %s: %s", opt.listen, strerror(errno));
  if (ai) freeaddrinfo(ai);
  if (fd >= 0) close(fd);
  return -1;
}

static int setup_tls(void) {
  if (!opt.tls_cert && !opt.tls_key && !opt.tls_client_ca) return 0;
  if (!opt.tls_cert || !opt.tls_key) {
    say(1, "--tls-cert and --tls-key go together");
    return -1;
  }
  ssl_ctx = SSL_CTX_new(TLS_server_method());
  if (!ssl_ctx) return -1;
  if (opt.tls12 && SSL_CTX_set_max_proto_version(ssl_ctx, TLS1_2_VERSION) != 1) return -1;
  if ((opt.no_tickets || opt.ticket_delay) && SSL_CTX_set_num_tickets(ssl_ctx, 0) != 1) return -1;
  if (SSL_CTX_use_certificate_chain_file(ssl_ctx, opt.tls_cert) != 1 ||
      SSL_CTX_use_PrivateKey_file(ssl_ctx, opt.tls_key, SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ssl_ctx) != 1) {
    say(1, "cannot load %s / %s: %s", opt.tls_cert, opt.tls_key, ssl_reason());
    return -1;
  }
  if (opt.tls_client_ca) {
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(opt.tls_client_ca);
    if (!names || SSL_CTX_load_verify_locations(ssl_ctx, opt.tls_client_ca, NULL) != 1) {
      say(1, "cannot load %s: %s", opt.tls_client_ca, ssl_reason());
      if (names) sk_X509_NAME_pop_free(names, X509_NAME_free);
      return -1;
    }
    SSL_CTX_set_client_CA_list(ssl_ctx, names);
    SSL_CTX_set_verify(ssl_ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
  }
  return 0;
}

static void on_signal(int sig) {
  int saved = errno;
  char b = (char)sig;

  if (write(sig_pipe[1], &b, 1) < 0) { /* pipe full: a wakeup is pending anyway */
  }
  errno = saved;
}

static void usage(void) {
  fprintf(stderr,
          "usage: kps-collector --listen HOST:PORT [--port-file F] [--out FILE|-] [--count-file F]\n"
          "         [--tls-cert C --tls-key K [--tls-client-ca CA] [--client-cn-file F]\n"
          "          [--tls12] [--tls-no-tickets | --tls-ticket-delay-ms MS]]\n"
          "         [--no-read] [--rst-after-lines N] [--rcvbuf BYTES] [--quiet]\n");
}

static int parse_args(int argc, char **argv) {
  int i;

  for (i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    int takes = 1;
    if (strcmp(a, "--no-read") == 0) {
      opt.no_read = 1;
      takes = 0;
    } else if (strcmp(a, "--quiet") == 0) {
      opt.quiet = 1;
      takes = 0;
    } else if (strcmp(a, "--tls12") == 0) {
      opt.tls12 = 1;
      takes = 0;
    } else if (strcmp(a, "--tls-no-tickets") == 0) {
      opt.no_tickets = 1;
      takes = 0;
    } else if (!v) {
      return -1;
    } else if (strcmp(a, "--listen") == 0) {
      opt.listen = v;
    } else if (strcmp(a, "--port-file") == 0) {
      opt.port_file = v;
    } else if (strcmp(a, "--out") == 0) {
      opt.out = v;
    } else if (strcmp(a, "--count-file") == 0) {
      opt.count_file = v;
    } else if (strcmp(a, "--tls-cert") == 0) {
      opt.tls_cert = v;
    } else if (strcmp(a, "--tls-key") == 0) {
      opt.tls_key = v;
    } else if (strcmp(a, "--tls-client-ca") == 0) {
      opt.tls_client_ca = v;
    } else if (strcmp(a, "--client-cn-file") == 0) {
      opt.client_cn_file = v;
    } else if (strcmp(a, "--rst-after-lines") == 0) {
      opt.rst_after = strtoull(v, NULL, 10);
      if (opt.rst_after == 0) return -1;
    } else if (strcmp(a, "--tls-ticket-delay-ms") == 0) {
      opt.ticket_delay = strtoull(v, NULL, 10);
      if (opt.ticket_delay == 0) return -1;
    } else if (strcmp(a, "--rcvbuf") == 0) {
      opt.rcvbuf = atoi(v);
    } else {
      return -1;
    }
    i += takes;
  }
  return opt.listen ? 0 : -1;
}

int main(int argc, char **argv) {
  struct pollfd pfd[MAX_CONNS + 2];
  conn_t *polled[MAX_CONNS];
  struct sigaction sa;
  int lfd, i, n, timeout, stop = 0;

  if (parse_args(argc, argv) != 0) {
    usage();
    return 2;
  }
  if (pipe2(sig_pipe, O_NONBLOCK | O_CLOEXEC) != 0) return 1;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  if (opt.out) {
    out_fd = strcmp(opt.out, "-") == 0 ? STDOUT_FILENO
                                       : open(opt.out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (out_fd < 0) {
      say(1, "cannot open %s: %s", opt.out, strerror(errno));
      return 1;
    }
  }
  if (setup_tls() != 0) return 1;
  lfd = open_listener();
  if (lfd < 0) return 1;

  while (!stop) {
    pfd[0].fd = sig_pipe[0];
    pfd[0].events = POLLIN;
    pfd[1].fd = lfd;
    pfd[1].events = POLLIN;
    timeout = -1;
    for (i = 0; i < nconns; i++) {
      conn_t *c = conns[i];
      polled[i] = c;
      pfd[i + 2].fd = c->fd;
      pfd[i + 2].events = 0;
      if (c->rst_pending)
        timeout = 10;
      else if (!opt.no_read)
        pfd[i + 2].events = (short)(POLLIN | (c->want_write ? POLLOUT : 0));
    }
    n = nconns;
    if (opt.count_file && total_lines != count_written) timeout = COUNT_FILE_EVERY_MS;
    if (opt.ticket_delay) {
      int t = ticket_tick();
      if (t >= 0 && (timeout < 0 || t < timeout)) timeout = t;
    }
    if (poll(pfd, (nfds_t)(n + 2), timeout) < 0) {
      if (errno == EINTR) continue; /* revents are undefined; the signal pipe is readable now */
      say(1, "poll: %s", strerror(errno));
      break;
    }
    if (pfd[0].revents & POLLIN) stop = 1;
    for (i = 0; i < n && !stop; i++) {
      short re = pfd[i + 2].revents;
      conn_t *c = polled[i];
      if (!re) continue;
      if (opt.no_read) {
        if (re & (POLLHUP | POLLERR)) conn_free(c, "hangup");
        continue;
      }
      if (!c->rst_pending) conn_on_event(c, re);
    }
    if (!stop && (pfd[1].revents & POLLIN)) accept_all(lfd);
    rst_tick();
    update_count_file(0);
  }

  say(0, "stopping: draining %d connections", nconns);
  while (nconns > 0) {
    if (opt.no_read)
      conn_free(conns[nconns - 1], "stopped");
    else
      conn_drain_close(conns[nconns - 1], 0);
  }
  close(lfd);
  update_count_file(1);
  say(0, "stopped after %llu lines", (unsigned long long)total_lines);
  if (out_fd > STDOUT_FILENO) close(out_fd);
  SSL_CTX_free(ssl_ctx);
  close(sig_pipe[0]);
  close(sig_pipe[1]);
  return 0;
}
