/* sink_tls.c: the TLS transport.  OpenSSL works on a pair of memory BIOs;
 * libuv moves the ciphertext, so the handshake, writes and reads never block
 * and the endpoint can account acknowledged bytes on the wire as for plain
 * TCP: a record's wire end is the ciphertext offset after the TLS record
 * holding its last byte.
 *
 * Acceptance (sink.h): TLS 1.2 at the end of the handshake; TLS 1.3 once a
 * record from the collector that arrived after the handshake was decrypted
 * and processed without error (seen by the message callback), since a TLS
 * 1.3 server checks our certificate only after our Finished.  The grace
 * period for a collector that sends nothing is the endpoint's business. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "sink_transport.h"

/* Plaintext staged per SSL_write: small records share one TLS record, which
 * keeps the per-record overhead (22+ bytes) off short log lines. */
#define KPS__SINK_TLS_STAGE 16384

typedef struct kps__sink_tls_ctx_s {
  SSL_CTX *ctx;
  char *sni; /* SNI to send and name to verify, or NULL (then each endpoint's host is verified) */
  int verify;
} kps__sink_tls_ctx_t;

typedef struct kps__sink_tls_conn_s {
  SSL *ssl; /* owns both BIOs */
  BIO *rbio, *wbio;
  int ready;    /* handshake done */
  int accepted; /* T_ACCEPTED was returned */
  int post_hs;  /* TLS 1.3: a record other than an alert was decrypted after the handshake */
  char stage[KPS__SINK_TLS_STAGE];
} kps__sink_tls_conn_t;

/* Short text of the newest OpenSSL error; clears the error queue. */
static void kps__sink_tls_reason(char *buf, size_t cap) {
  unsigned long e = ERR_peek_last_error();
  const char *r = e ? ERR_reason_error_string(e) : NULL;

  if (r)
    snprintf(buf, cap, "%s", r);
  else if (e)
    ERR_error_string_n(e, buf, cap);
  else
    snprintf(buf, cap, "unknown error");
  ERR_clear_error();
}

#define KPS__SINK_TLS_MAX_PEM (4u << 20)

/* Reads a PEM file into memory without ever blocking the loop on something
 * that is not a regular file (a FIFO would hang every RPC): opened
 * non-blocking, checked with fstat, bounded in size.  Returns a memory BIO,
 * or NULL with a message naming the field. */
static BIO *kps__sink_tls_slurp(const char *field, const char *path, char **err) {
  struct stat st;
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  char *buf = NULL;
  BIO *bio = NULL;
  size_t got = 0;

  if (fd < 0) {
    kps__sink_errf(err, "%s: cannot read %s: %s", field, path, strerror(errno));
    return NULL;
  }
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    kps__sink_errf(err, "%s: %s is not a regular file", field, path);
    goto out;
  }
  if ((uint64_t)st.st_size > KPS__SINK_TLS_MAX_PEM) {
    kps__sink_errf(err, "%s: %s is larger than %u bytes", field, path, KPS__SINK_TLS_MAX_PEM);
    goto out;
  }
  buf = malloc((size_t)st.st_size + 1);
  if (!buf) {
    kps__sink_errf(err, "%s: out of memory", field);
    goto out;
  }
  while (got < (size_t)st.st_size) {
    ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += (size_t)n;
  }
  bio = BIO_new(BIO_s_mem());
  if (!bio || BIO_write(bio, buf, (int)got) != (int)got) {
    BIO_free(bio);
    bio = NULL;
    kps__sink_errf(err, "%s: out of memory", field);
  }
out:
  free(buf);
  close(fd);
  return bio;
}

/* CA certificates from tls_ca_file into the context's store. */
static int kps__sink_tls_load_ca(SSL_CTX *ctx, const char *path, char **err) {
  BIO *bio = kps__sink_tls_slurp("tls_ca_file", path, err);
  X509 *x;
  int n = 0;

  if (!bio) return -1;
  X509_STORE *store = SSL_CTX_get_cert_store(ctx);
  while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
    X509_STORE_add_cert(store, x);
    X509_free(x);
    n++;
  }
  ERR_clear_error(); /* the end of the file reads as an error */
  BIO_free(bio);
  if (n == 0) {
    kps__sink_errf(err, "tls_ca_file: cannot load %s: no PEM certificate in it", path);
    return -1;
  }
  return 0;
}

/* The client certificate (and its chain) from tls_client_cert. */
static int kps__sink_tls_load_cert(SSL_CTX *ctx, const char *path, char **err) {
  BIO *bio = kps__sink_tls_slurp("tls_client_cert", path, err);
  X509 *x;

  if (!bio) return -1;
  x = PEM_read_bio_X509_AUX(bio, NULL, NULL, NULL);
  if (!x || SSL_CTX_use_certificate(ctx, x) != 1) {
    X509_free(x);
    BIO_free(bio);
    ERR_clear_error();
    kps__sink_errf(err, "tls_client_cert: cannot load %s: no usable PEM certificate", path);
    return -1;
  }
  X509_free(x);
  while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
    if (SSL_CTX_add_extra_chain_cert(ctx, x) != 1) X509_free(x); /* owned by ctx on success */
  ERR_clear_error();
  BIO_free(bio);
  return 0;
}

static int kps__sink_tls_no_passphrase(char *buf, int size, int rwflag, void *ud);

/* The private key of the client certificate from tls_client_key; the
 * certificate is loaded first, so OpenSSL checks that they belong together. */
static int kps__sink_tls_load_key(SSL_CTX *ctx, const char *path, const char *cert, char **err) {
  BIO *bio = kps__sink_tls_slurp("tls_client_key", path, err);
  EVP_PKEY *k;
  int rc = -1;

  if (!bio) return -1;
  k = PEM_read_bio_PrivateKey(bio, NULL, kps__sink_tls_no_passphrase, NULL);
  BIO_free(bio);
  if (!k)
    kps__sink_errf(err, "tls_client_key: cannot load %s: no usable PEM private key (encrypted keys are not supported)", path);
  else if (SSL_CTX_use_PrivateKey(ctx, k) != 1)
    kps__sink_errf(err, "tls_client_key: %s does not match tls_client_cert %s", path, cert);
  else
    rc = 0;
  EVP_PKEY_free(k);
  ERR_clear_error();
  return rc;
}

/* Never prompt on a terminal for a key passphrase: encrypted keys just fail. */
static int kps__sink_tls_no_passphrase(char *buf, int size, int rwflag, void *ud) { return 0; }

static int kps__sink_tls_is_ip(const char *name) {
  unsigned char addr[16];

  return inet_pton(AF_INET, name, addr) == 1 || inet_pton(AF_INET6, name, addr) == 1;
}

static void kps__sink_tls_ctx_free(void *tctx) {
  kps__sink_tls_ctx_t *x = tctx;

  if (!x) return;
  SSL_CTX_free(x->ctx);
  free(x->sni);
  free(x);
}

/* Loads CA, client certificate and key now so a bad file fails acquire. */
static int kps__sink_tls_ctx_new(const kps_sink_config_t *cfg, void **tctx, char **err) {
  kps__sink_tls_ctx_t *x = calloc(1, sizeof(*x));
  const char *sni = (cfg->tls_sni && *cfg->tls_sni) ? cfg->tls_sni : NULL;
  const char *ca = (cfg->tls_ca_file && *cfg->tls_ca_file) ? cfg->tls_ca_file : NULL;
  const char *cert = (cfg->tls_client_cert && *cfg->tls_client_cert) ? cfg->tls_client_cert : NULL;
  const char *key = (cfg->tls_client_key && *cfg->tls_client_key) ? cfg->tls_client_key : NULL;
  char reason[256];

  *tctx = NULL;
  if (!x) goto oom;
  ERR_clear_error();
  x->verify = cfg->tls_verify != 0;
  x->sni = sni ? strdup(sni) : NULL;
  x->ctx = SSL_CTX_new(TLS_client_method());
  if ((sni && !x->sni) || !x->ctx) goto oom;
  SSL_CTX_set_min_proto_version(x->ctx, TLS1_2_VERSION);
  SSL_CTX_set_default_passwd_cb(x->ctx, kps__sink_tls_no_passphrase);
  if (ca) {
    if (kps__sink_tls_load_ca(x->ctx, ca, err) != 0) goto fail;
  } else if (x->verify && SSL_CTX_set_default_verify_paths(x->ctx) != 1) {
    kps__sink_tls_reason(reason, sizeof(reason));
    KPS_WARN("sink: cannot load the system CA store: %s", reason);
  }
  if (cert || key) {
    if (!cert || !key) {
      kps__sink_errf(err, "%s: required together with %s", cert ? "tls_client_key" : "tls_client_cert",
                     cert ? "tls_client_cert" : "tls_client_key");
      goto fail;
    }
    if (kps__sink_tls_load_cert(x->ctx, cert, err) != 0) goto fail;
    if (kps__sink_tls_load_key(x->ctx, key, cert, err) != 0) goto fail;
  }
  SSL_CTX_set_verify(x->ctx, x->verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
  *tctx = x;
  return 0;

oom:
  kps__sink_errf(err, "tls: out of memory");
fail:
  ERR_clear_error();
  kps__sink_tls_ctx_free(x);
  return -1;
}

/* Moves whatever OpenSSL produced to the socket. */
static int kps__sink_tls_flush(kps__sink_conn_t *c) {
  kps__sink_tls_conn_t *t = c->tstate;
  size_t n = BIO_ctrl_pending(t->wbio);
  char *buf;

  if (n == 0) return 0;
  buf = malloc(n);
  if (!buf) return -1;
  if (BIO_read(t->wbio, buf, (int)n) != (int)n) {
    free(buf);
    return -1;
  }
  return kps__sink_conn_send_raw(c, buf, n) == 0 ? 0 : -1;
}

/* Says why `what` failed in c->why (the endpoint logs it); clears the
 * OpenSSL error queue. */
static void kps__sink_tls_why(kps__sink_conn_t *c, const char *what, int ssl_err) {
  kps__sink_tls_conn_t *t = c->tstate;
  long vr = t && t->ssl ? SSL_get_verify_result(t->ssl) : X509_V_OK;
  char reason[200];

  if (vr != X509_V_OK) {
    ERR_clear_error();
    snprintf(c->why, sizeof(c->why), "TLS %s failed: certificate verification: %s", what,
             X509_verify_cert_error_string(vr));
  } else if (ERR_peek_last_error()) {
    kps__sink_tls_reason(reason, sizeof(reason));
    snprintf(c->why, sizeof(c->why), "TLS %s failed: %s", what, reason);
  } else {
    snprintf(c->why, sizeof(c->why), "TLS %s failed (ssl error %d)", what, ssl_err);
  }
}

/* TLS 1.3 acceptance: after the handshake, a record that decrypted and is
 * not an alert (a NewSessionTicket, application data, a KeyUpdate) shows
 * the collector kept the connection after checking our certificate.  The
 * record layer reports each decrypted record's inner content type. */
static void kps__sink_tls_on_msg(int write_p, int version, int content_type, const void *buf, size_t len,
                                 SSL *ssl, void *arg) {
  kps__sink_tls_conn_t *t = arg;

  if (write_p || !t->ready || content_type != SSL3_RT_INNER_CONTENT_TYPE || len != 1) return;
  if (*(const unsigned char *)buf != SSL3_RT_ALERT) t->post_hs = 1;
}

/* Returns T_OK (in progress), T_ACCEPTED (TLS 1.2: the server's Finished
 * came after it checked us), T_READY (TLS 1.3: acceptance comes later) or
 * an error. */
static int kps__sink_tls_handshake(kps__sink_conn_t *c) {
  kps__sink_tls_conn_t *t = c->tstate;
  int r, e;

  ERR_clear_error();
  r = SSL_do_handshake(t->ssl);
  if (r == 1) {
    t->ready = 1;
    KPS_DEBUG("sink %s: %s %s", c->name, SSL_get_version(t->ssl), SSL_get_cipher_name(t->ssl));
    if (kps__sink_tls_flush(c) != 0) {
      snprintf(c->why, sizeof(c->why), "TLS handshake: cannot send");
      return KPS__SINK_T_ERR;
    }
    if (SSL_version(t->ssl) == TLS1_3_VERSION) return KPS__SINK_T_READY;
    t->accepted = 1;
    return KPS__SINK_T_ACCEPTED;
  }
  e = SSL_get_error(t->ssl, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
    if (kps__sink_tls_flush(c) == 0) return KPS__SINK_T_OK;
    snprintf(c->why, sizeof(c->why), "TLS handshake: cannot send");
    return KPS__SINK_T_ERR;
  }
  kps__sink_tls_why(c, "handshake", e);
  (void)kps__sink_tls_flush(c); /* the alert, best effort */
  return KPS__SINK_T_TLSERR;
}

static int kps__sink_tls_conn_start(kps__sink_conn_t *c) {
  kps__sink_tls_ctx_t *x = c->tctx;
  kps__sink_tls_conn_t *t = calloc(1, sizeof(*t));
  int ok;

  if (!t) goto oom;
  c->tstate = t;
  ERR_clear_error();
  t->ssl = SSL_new(x->ctx);
  if (!t->ssl) goto oom;
  t->rbio = BIO_new(BIO_s_mem());
  t->wbio = BIO_new(BIO_s_mem());
  if (!t->rbio || !t->wbio) {
    BIO_free(t->rbio);
    BIO_free(t->wbio);
    t->rbio = t->wbio = NULL;
    goto oom;
  }
  SSL_set_bio(t->ssl, t->rbio, t->wbio);
  SSL_set_connect_state(t->ssl);
  SSL_set_msg_callback(t->ssl, kps__sink_tls_on_msg);
  SSL_set_msg_callback_arg(t->ssl, t);
  ok = 1;
  if (x->sni) ok = SSL_set_tlsext_host_name(t->ssl, x->sni) == 1;
  if (ok && x->verify) {
    const char *name = x->sni ? x->sni : c->host;
    if (kps__sink_tls_is_ip(name))
      ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), name) == 1;
    else
      ok = SSL_set1_host(t->ssl, name) == 1;
  }
  if (!ok) {
    kps__sink_tls_why(c, "setup", 0);
    return KPS__SINK_T_TLSERR;
  }
  return kps__sink_tls_handshake(c);

oom:
  ERR_clear_error();
  snprintf(c->why, sizeof(c->why), "TLS: out of memory");
  return KPS__SINK_T_ERR;
}

/* Feeds ciphertext from the collector; after the handshake only session
 * tickets, alerts or close_notify are expected, application data is dropped
 * (but, like a ticket, shows a TLS 1.3 collector accepted us). */
static int kps__sink_tls_conn_input(kps__sink_conn_t *c, const char *data, size_t len) {
  kps__sink_tls_conn_t *t = c->tstate;
  int hs = KPS__SINK_T_OK, r, e;

  if (BIO_write(t->rbio, data, (int)len) != (int)len) {
    snprintf(c->why, sizeof(c->why), "TLS: out of memory");
    return KPS__SINK_T_ERR;
  }
  if (!t->ready) {
    hs = kps__sink_tls_handshake(c);
    if (hs != KPS__SINK_T_READY && hs != KPS__SINK_T_ACCEPTED) return hs;
  }
  for (;;) {
    ERR_clear_error();
    r = SSL_read(t->ssl, t->stage, (int)sizeof(t->stage));
    if (r > 0) {
      t->post_hs = 1;
      continue;
    }
    e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ) break;
    if (e == SSL_ERROR_ZERO_RETURN) {
      (void)kps__sink_tls_flush(c);
      return KPS__SINK_T_EOF;
    }
    kps__sink_tls_why(c, "read", e);
    (void)kps__sink_tls_flush(c);
    return e == SSL_ERROR_SSL ? KPS__SINK_T_TLSERR : KPS__SINK_T_ERR;
  }
  if (kps__sink_tls_flush(c) != 0) {
    snprintf(c->why, sizeof(c->why), "TLS: cannot send");
    return KPS__SINK_T_ERR;
  }
  if (hs == KPS__SINK_T_READY) {
    /* Whatever came with the server's Finished was sent before it saw ours. */
    t->post_hs = 0;
    return hs;
  }
  if (hs == KPS__SINK_T_ACCEPTED) return hs;
  if (!t->accepted && t->post_hs) {
    t->accepted = 1;
    return KPS__SINK_T_ACCEPTED;
  }
  return KPS__SINK_T_OK;
}

static int kps__sink_tls_seal(kps__sink_conn_t *c, size_t fill) {
  kps__sink_tls_conn_t *t = c->tstate;
  int r;

  ERR_clear_error();
  r = SSL_write(t->ssl, t->stage, (int)fill);
  if (r != (int)fill) {
    kps__sink_tls_why(c, "write", SSL_get_error(t->ssl, r));
    return -1;
  }
  return 0;
}

/* Encrypts the batch into one buffer.  Records are staged into full TLS
 * records; every record whose last byte lands in a TLS record gets that
 * TLS record's end offset, so it counts as delivered only once the whole
 * TLS record (and so its MAC) was acknowledged. */
static int kps__sink_tls_conn_encode(kps__sink_conn_t *c, kps__sink_batch_t *b) {
  kps__sink_tls_conn_t *t = c->tstate;
  size_t fill = 0, end, off, n;
  unsigned i, j, pend = 0, last;
  char *buf;

  for (i = 0; i < b->nrec; i++) {
    kps__sink_rec_t *r = b->recs[i];
    off = 0;
    do {
      n = KPS__SINK_TLS_STAGE - fill;
      if (n > r->len - off) n = r->len - off;
      if (n > 0) memcpy(t->stage + fill, r->data + off, n);
      fill += n;
      off += n;
      if (fill == KPS__SINK_TLS_STAGE) {
        if (kps__sink_tls_seal(c, fill) != 0) return -1;
        fill = 0;
        end = BIO_ctrl_pending(t->wbio);
        last = off == r->len ? i + 1 : i;
        for (j = pend; j < last; j++) b->rec_end[j] = end;
        pend = last;
      }
    } while (off < r->len);
  }
  if (fill > 0 && kps__sink_tls_seal(c, fill) != 0) return -1;
  end = BIO_ctrl_pending(t->wbio);
  for (j = pend; j < b->nrec; j++) b->rec_end[j] = end;
  buf = malloc(end ? end : 1);
  if (!buf) {
    snprintf(c->why, sizeof(c->why), "TLS: out of memory");
    return -1;
  }
  if (end > 0 && BIO_read(t->wbio, buf, (int)end) != (int)end) {
    free(buf);
    snprintf(c->why, sizeof(c->why), "TLS: cannot read the sealed records");
    return -1;
  }
  b->owned = buf;
  b->bufs[0].base = buf;
  b->bufs[0].len = end;
  b->nbufs = 1;
  b->wire_len = end;
  return 0;
}

static size_t kps__sink_tls_conn_goodbye(kps__sink_conn_t *c, char *buf, size_t cap) {
  kps__sink_tls_conn_t *t = c->tstate;
  int n;

  if (!t || !t->ready) return 0;
  ERR_clear_error();
  (void)SSL_shutdown(t->ssl); /* queues close_notify */
  n = BIO_read(t->wbio, buf, (int)cap);
  ERR_clear_error();
  return n > 0 ? (size_t)n : 0;
}

static void kps__sink_tls_conn_free(kps__sink_conn_t *c) {
  kps__sink_tls_conn_t *t = c->tstate;

  if (t) SSL_free(t->ssl);
  free(t);
  c->tstate = NULL;
}

const kps__sink_transport_t kps__sink_tls = {
    "tls://",
    kps__sink_tls_ctx_new,
    kps__sink_tls_ctx_free,
    kps__sink_tls_conn_start,
    kps__sink_tls_conn_input,
    kps__sink_tls_conn_encode,
    kps__sink_tls_conn_goodbye,
    kps__sink_tls_conn_free,
};
