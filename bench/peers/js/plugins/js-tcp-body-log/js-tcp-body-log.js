'use strict'
// js-tcp-body-log: kong-c-pluginserver's tcp-body-log ported to Kong's JS PDK
// (kong-pdk), the peer the benchmarks compare against (bench/rpc, bench/e2e).
//
// Same PDK calls in the same phases as the C plugin (6 RPCs per exchange):
//   response: kong.log.set_serialize_value("tcp_body_log_exchange", key)
//             kong.nginx.get_var("request_body")        (str, nil when in a file)
//             kong.service.response.get_raw_body()      (bin)
//   log:      kong.log.serialize()                      -> one JSON line
// Same record: Kong's serialize object, header values redacted, and
// request/response .body, .body_encoding ("text" | "base64"), .body_size,
// .body_truncated, or .body_skipped (+ body_size when known).  Same caps on
// the context table (context_ttl, context_max_bytes, queue_max_entries) and
// on the collector queue (queue_max_bytes, queue_max_entries, drop-newest).
// Same collector: one kept-alive TCP (or TLS) connection per host/port/TLS
// settings, lines written in batches; a line leaves the queue once written.
// bench/peers/js/plugins/bodylog is the peers' 9-RPC pattern, kept as is.

const net = require('net')
const tls = require('tls')
const fs = require('fs')
const crypto = require('crypto')
const { isUtf8 } = require('buffer')

const KEY = 'tcp_body_log_exchange'
const NONCE = crypto.randomBytes(6).toString('hex')
const PENDING = 0, CAPTURED = 1, NIL = 2, DISABLED = 3
const DEFAULT_REDACT = ['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'apikey', 'x-api-key']

let counter = 0

// ---- the context table: captured bodies waiting for their log phase ------

const contexts = new Map() // key -> exchange, oldest first (insertion order)
let ctxBytes = 0
let limits = { ttl: 60000, maxBytes: 64 << 20, maxEntries: 10000 }
const stats = { created: 0, consumed: 0, evicted: 0, expired: 0, lost: 0, queued: 0, refused: 0 }

function ctxDelete(key, ex) {
  contexts.delete(key)
  ctxBytes -= ex.bytes
}

function ctxTrim(now, extraBytes) {
  for (const [key, ex] of contexts) {
    if (now - ex.created > limits.ttl) {
      ctxDelete(key, ex); stats.expired++
    } else if (contexts.size >= limits.maxEntries || ctxBytes + extraBytes > limits.maxBytes) {
      ctxDelete(key, ex); stats.evicted++
    } else {
      break
    }
  }
}

function ctxTake(key) {
  const ex = contexts.get(key)
  if (ex === undefined) {
    stats.lost++
    return null
  }
  ctxDelete(key, ex)
  stats.consumed++
  if (Date.now() - ex.created > limits.ttl) {
    stats.expired++
    return null
  }
  return ex
}

// ---- body helpers (body.c) -------------------------------------------------

function utf8ValidPrefix(b, n) {
  // the longest valid UTF-8 prefix of b[0..n)
  let i = 0
  while (i < n) {
    const c = b[i]
    let len, cp
    if (c < 0x80) { i++; continue }
    if (c >= 0xc2 && c <= 0xdf) { len = 2; cp = c & 0x1f } else if (c >= 0xe0 && c <= 0xef) { len = 3; cp = c & 0x0f } else if (c >= 0xf0 && c <= 0xf4) { len = 4; cp = c & 0x07 } else break
    if (n - i < len) break
    let ok = true
    for (let k = 1; k < len; k++) {
      if ((b[i + k] & 0xc0) !== 0x80) { ok = false; break }
      cp = (cp << 6) | (b[i + k] & 0x3f)
    }
    if (!ok || (len === 3 && cp < 0x800) || (len === 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff)) break
    i += len
  }
  return i
}

function incompleteSequence(b, at, n) {
  const c = b[at]
  const need = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xc2 && c <= 0xdf ? 2 : 0
  if (need === 0 || n >= need) return false
  for (let i = 1; i < n; i++) if ((b[at + i] & 0xc0) !== 0x80) return false
  return true
}

// bytes of the kept prefix to log: max bytes, not cutting a UTF-8 character
function truncatePoint(data, size, max) {
  const cut = Math.min(data.length, max)
  if (cut === size) return cut
  const v = utf8ValidPrefix(data, cut)
  if (v < cut && cut - v <= 3 && incompleteSequence(data, v, cut - v)) return v
  return cut
}

function globToRegExp(p) {
  return new RegExp('^' + p.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$', 'i')
}

function contentTypeAllowed(ct, patterns) {
  if (patterns.length === 0) return true
  if (typeof ct !== 'string') return false
  const media = ct.split(';')[0].trim()
  return patterns.some((re) => re.test(media))
}

// tbl_json_mask: the values of the named keys, at any depth, become
// "REDACTED"; works on truncated JSON too (raw bytes, escapes not decoded).
function jsonMask(buf, fields) {
  if (fields.length === 0) return null
  const s = buf.toString('latin1') // one char per byte
  const len = s.length
  const ws = (c) => c === ' ' || c === '\t' || c === '\n' || c === '\r'
  let i = 0
  while (i < len && ws(s[i])) i++
  if (i >= len || (s[i] !== '{' && s[i] !== '[')) return null
  const stringEnd = (k) => {
    for (k++; k < len; k++) {
      if (s[k] === '\\') k++
      else if (s[k] === '"') return k + 1
    }
    return len
  }
  const valueEnd = (k) => {
    if (k >= len) return len
    if (s[k] === '"') return stringEnd(k)
    if (s[k] === '{' || s[k] === '[') {
      let depth = 0
      for (; k < len; k++) {
        if (s[k] === '"') { k = stringEnd(k) - 1; continue }
        if (s[k] === '{' || s[k] === '[') depth++
        else if ((s[k] === '}' || s[k] === ']') && --depth === 0) return k + 1
      }
      return len
    }
    while (k < len && !',}] \n\r\t'.includes(s[k])) k++
    return k
  }
  const out = []
  let copied = 0, masked = false
  while (i < len) {
    if (s[i] !== '"') { i++; continue }
    const kend = stringEnd(i)
    let j = kend
    while (j < len && ws(s[j])) j++
    if (j >= len || s[j] !== ':' || kend === len) { i = kend; continue }
    if (!fields.includes(s.slice(i + 1, kend - 1).toLowerCase())) { i = j + 1; continue }
    j++
    while (j < len && ws(s[j])) j++
    const vend = valueEnd(j)
    out.push(s.slice(copied, j), '"REDACTED"')
    copied = vend
    i = vend
    masked = true
  }
  if (!masked) return null
  out.push(s.slice(copied))
  return Buffer.from(out.join(''), 'latin1')
}

// ---- the record (record.c) -------------------------------------------------

function header(headers, name) {
  if (!headers || typeof headers !== 'object') return undefined
  let v = headers[name]
  if (v === undefined) {
    for (const k of Object.keys(headers)) if (k.toLowerCase() === name) { v = headers[k]; break }
  }
  if (Array.isArray(v)) v = v[0]
  return typeof v === 'string' ? v : undefined
}

function contentLength(headers) {
  const cl = header(headers, 'content-length')
  if (cl === undefined) return -1
  const v = parseInt(cl, 10)
  return Number.isNaN(v) || v < 0 ? -1 : v
}

function proxied(root) {
  const tries = root.tries
  const hasTries = Array.isArray(tries) && tries.length > 0
  if (root.source === 'kong' && !hasTries) return false
  return hasTries || (typeof root.upstream_uri === 'string' && root.upstream_uri !== '')
}

function addSkip(obj, why, size) {
  obj.body_skipped = why
  if (size >= 0) obj.body_size = size
}

function addBody(obj, c, o) {
  const data = c.data || Buffer.alloc(0)
  const n = truncatePoint(data, c.size, o.max_body_size)
  let p = data.subarray(0, n)
  const m = jsonMask(p, o.redact_json_fields)
  if (m) p = m
  if (isUtf8(p) && !p.includes(0)) {
    obj.body = p.toString('utf8')
    obj.body_encoding = 'text'
  } else {
    obj.body = p.toString('base64')
    obj.body_encoding = 'base64'
  }
  obj.body_size = c.size
  obj.body_truncated = c.size > n
}

function bodyFields(obj, enabled, haveKey, ex, c, isRequest, wasProxied, o) {
  const headers = obj.headers
  if (!enabled) return addSkip(obj, 'disabled', -1)
  if (!haveKey) {
    return addSkip(obj, wasProxied ? 'no_response_phase' : 'short_circuited',
      isRequest ? contentLength(headers) : -1)
  }
  if (!ex) return addSkip(obj, 'context_lost', isRequest ? contentLength(headers) : -1)
  switch (c.state) {
    case DISABLED: return addSkip(obj, 'disabled', -1)
    case PENDING: return addSkip(obj, 'not_received', -1)
    case NIL: {
      const cl = contentLength(headers)
      if (isRequest && (cl > 0 || header(headers, 'transfer-encoding') !== undefined)) {
        return addSkip(obj, 'file_buffered', cl)
      }
      return addBody(obj, { data: null, size: 0 }, o)
    }
  }
  if (c.size > 0 && !contentTypeAllowed(header(headers, 'content-type'), o.content_types)) {
    return addSkip(obj, 'content_type', c.size)
  }
  addBody(obj, c, o)
}

function redactHeaders(headers, names) {
  if (!headers || typeof headers !== 'object' || Array.isArray(headers)) return
  for (const k of Object.keys(headers)) if (names.has(k.toLowerCase())) headers[k] = 'REDACTED'
}

function objectAt(root, name) {
  const v = root[name]
  if (v && typeof v === 'object' && !Array.isArray(v)) return v
  root[name] = {}
  return root[name]
}

// ---- the collector connection and its bounded queue -------------------------

const sinks = new Map()

class Sink {
  constructor(c) {
    this.c = c
    this.queue = [] // lines not yet written
    this.queueBytes = 0
    this.inflight = [] // written to the socket, not yet flushed to the kernel
    this.sock = null
    this.connected = false
    this.backoff = 100
    this.dropped = 0
  }

  enqueue(line) {
    const n = this.queue.length + this.inflight.length
    if (n >= this.c.queue_max_entries || this.queueBytes + line.length > this.c.queue_max_bytes) {
      this.dropped++
      return false
    }
    this.queue.push(line)
    this.queueBytes += line.length
    this.flush()
    return true
  }

  connect() {
    const c = this.c
    const opts = { host: c.host, port: c.port }
    let sock
    if (c.tls) {
      Object.assign(opts, {
        servername: c.tls_sni || c.host,
        rejectUnauthorized: c.tls_verify,
        ca: c.tls_ca_file ? fs.readFileSync(c.tls_ca_file) : undefined,
        cert: c.tls_client_cert ? fs.readFileSync(c.tls_client_cert) : undefined,
        key: c.tls_client_key ? fs.readFileSync(c.tls_client_key) : undefined,
      })
      sock = tls.connect(opts)
    } else {
      sock = net.connect(opts)
    }
    this.sock = sock
    sock.setNoDelay(true)
    sock.setTimeout(c.timeout)
    const ready = () => {
      this.connected = true
      this.backoff = 100
      sock.setTimeout(c.keepalive)
      this.flush()
    }
    sock.on(c.tls ? 'secureConnect' : 'connect', ready)
    sock.on('timeout', () => sock.destroy())
    sock.on('error', () => {})
    sock.on('close', () => {
      this.sock = null
      this.connected = false
      // what was not flushed to the kernel goes back to the front
      if (this.inflight.length) {
        this.queue = this.inflight.concat(this.queue)
        this.inflight = []
      }
      if (this.queue.length) {
        setTimeout(() => this.flush(), this.backoff)
        this.backoff = Math.min(this.backoff * 2, 5000)
      }
    })
  }

  flush() {
    if (!this.connected) {
      if (!this.sock && this.queue.length) this.connect()
      return
    }
    while (this.queue.length && this.sock.writableLength < (1 << 20)) {
      const batch = this.queue.splice(0, 128)
      this.inflight.push(...batch)
      this.sock.write(batch.length === 1 ? batch[0] : batch.join(''), (err) => {
        if (err) return
        for (const l of batch) this.queueBytes -= l.length
        this.inflight.splice(0, batch.length)
      })
    }
  }
}

function sinkFor(c) {
  const key = [c.host, c.port, c.tls, c.tls_sni, c.tls_verify, c.tls_ca_file, c.tls_client_cert].join('|')
  let s = sinks.get(key)
  if (!s) {
    s = new Sink(c)
    sinks.set(key, s)
  }
  s.c = c // the most recently started instance's caps apply
  return s
}

// ---- the plugin ---------------------------------------------------------------

function opt(v, d) { return v === undefined || v === null ? d : v }

class TcpBodyLog {
  constructor(config) {
    const c = {
      host: config.host,
      port: config.port,
      timeout: opt(config.timeout, 10000),
      keepalive: opt(config.keepalive, 60000),
      tls: opt(config.tls, false),
      tls_sni: opt(config.tls_sni, null),
      tls_verify: opt(config.tls_verify, true),
      tls_ca_file: opt(config.tls_ca_file, null),
      tls_client_cert: opt(config.tls_client_cert, null),
      tls_client_key: opt(config.tls_client_key, null),
      log_request_body: opt(config.log_request_body, true),
      log_response_body: opt(config.log_response_body, true),
      max_body_size: opt(config.max_body_size, 8192),
      content_types: (Array.isArray(config.content_types) ? config.content_types : []).map(globToRegExp),
      redact_headers: new Set((Array.isArray(config.redact_headers) ? config.redact_headers : DEFAULT_REDACT)
        .map((h) => h.toLowerCase())),
      redact_json_fields: (Array.isArray(config.redact_json_fields) ? config.redact_json_fields : [])
        .map((f) => f.toLowerCase()),
      queue_max_bytes: opt(config.queue_max_bytes, 16 << 20),
      queue_max_entries: opt(config.queue_max_entries, 10000),
    }
    this.c = c
    this.sink = sinkFor(c)
    limits = {
      ttl: opt(config.context_ttl, 60000),
      maxBytes: opt(config.context_max_bytes, 64 << 20),
      maxEntries: c.queue_max_entries,
    }
  }

  capture(ex, slot, body) {
    if (!contexts.has(ex.key)) return // evicted meanwhile
    if (body === undefined || body === null) {
      slot.state = NIL
      return
    }
    const view = typeof body === 'string' ? Buffer.from(body, 'utf8') : body
    const kept = Buffer.from(view.subarray(0, this.c.max_body_size)) // a copy of at most max bytes
    ctxTrim(Date.now(), kept.length)
    if (!contexts.has(ex.key)) return
    slot.state = CAPTURED
    slot.data = kept
    slot.size = view.length
    ex.bytes += kept.length
    ctxBytes += kept.length
  }

  async response(kong) {
    const c = this.c
    const key = `${NONCE}:${++counter}`
    const now = Date.now()
    ctxTrim(now, 0)
    const ex = {
      key, created: now, bytes: 0,
      req: { state: c.log_request_body ? PENDING : DISABLED },
      resp: { state: c.log_response_body ? PENDING : DISABLED },
    }
    contexts.set(key, ex)
    stats.created++
    await kong.log.setSerializeValue(KEY, key)
    if (c.log_request_body) this.capture(ex, ex.req, await kong.nginx.getVar('request_body'))
    if (c.log_response_body) this.capture(ex, ex.resp, await kong.service.response.getRawBody())
  }

  async log(kong) {
    const c = this.c
    const s = await kong.log.serialize()
    if (typeof s !== 'string') return
    let root
    try {
      root = JSON.parse(s)
    } catch (e) {
      return
    }
    if (!root || typeof root !== 'object' || Array.isArray(root)) return
    const key = root[KEY]
    delete root[KEY]
    const haveKey = typeof key === 'string'
    const ex = haveKey ? ctxTake(key) : null
    const wasProxied = proxied(root)
    const req = objectAt(root, 'request')
    const resp = objectAt(root, 'response')
    redactHeaders(req.headers, c.redact_headers)
    redactHeaders(resp.headers, c.redact_headers)
    bodyFields(req, c.log_request_body, haveKey, ex, ex && ex.req, true, wasProxied, c)
    bodyFields(resp, c.log_response_body, haveKey, ex, ex && ex.resp, false, wasProxied, c)
    if (this.sink.enqueue(JSON.stringify(root) + '\n')) stats.queued++
    else stats.refused++
  }
}

module.exports = {
  Plugin: TcpBodyLog,
  Name: 'js-tcp-body-log',
  Version: '0.1.0',
  Priority: 7,
  Schema: [
    { host: { type: 'string', required: true } },
    { port: { type: 'integer', required: true, between: [1, 65535] } },
    { timeout: { type: 'number', default: 10000 } },
    { keepalive: { type: 'number', default: 60000 } },
    { tls: { type: 'boolean', default: false } },
    { tls_sni: { type: 'string' } },
    { tls_verify: { type: 'boolean', default: true } },
    { tls_ca_file: { type: 'string' } },
    { tls_client_cert: { type: 'string' } },
    { tls_client_key: { type: 'string' } },
    { log_request_body: { type: 'boolean', default: true } },
    { log_response_body: { type: 'boolean', default: true } },
    { max_body_size: { type: 'integer', default: 8192 } },
    { content_types: { type: 'array', elements: { type: 'string' }, default: [] } },
    { redact_headers: { type: 'array', elements: { type: 'string' }, default: DEFAULT_REDACT } },
    { redact_json_fields: { type: 'array', elements: { type: 'string' }, default: [] } },
    { queue_max_bytes: { type: 'integer', default: 16777216 } },
    { queue_max_entries: { type: 'integer', default: 10000 } },
    { context_ttl: { type: 'number', default: 60000 } },
    { context_max_bytes: { type: 'integer', default: 67108864 } },
  ],
}
