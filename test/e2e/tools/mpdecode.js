#!/usr/bin/env node
'use strict'
// Decode recorded MessagePack-RPC streams (mprelay.js output or a kong-wire
// fixture case) showing the exact wire type of every element.
//   node mpdecode.js list <dir>      all messages in time order (listing.txt style)
//   node mpdecode.js summary <dir>   per RPC method and direction: count x type
//                                    signature; map keys sorted, so the output
//                                    does not depend on Lua's hash order
//   node mpdecode.js json <dir>      one JSON object per message: t, conn, dir,
//                                    kind, msgid, method, sig (wire types of the
//                                    whole message) and value (bin as
//                                    {"bin": length, "b64": ...})
// K = gateway (the Kong side, c2s), S = plugin server (s2c).

const fs = require('fs')
const path = require('path')

class Reader {
  constructor(buf) { this.b = buf; this.p = 0 }
  need(n) { if (this.p + n > this.b.length) throw new RangeError('truncated') }
  u8() { this.need(1); return this.b[this.p++] }
  u16() { this.need(2); const v = this.b.readUInt16BE(this.p); this.p += 2; return v }
  u32() { this.need(4); const v = this.b.readUInt32BE(this.p); this.p += 4; return v }
  bytes(n) { this.need(n); const v = this.b.subarray(this.p, this.p + n); this.p += n; return v }
}

// value: { t: wiretype, v: js value, items?: [...], entries?: [[k,v]...] }
function decode(r) {
  const b = r.u8()
  if (b <= 0x7f) return { t: 'posfixint', v: b }
  if (b >= 0xe0) return { t: 'negfixint', v: b - 256 }
  if ((b & 0xf0) === 0x80) return map(r, b & 0x0f, 'fixmap')
  if ((b & 0xf0) === 0x90) return arr(r, b & 0x0f, 'fixarray')
  if ((b & 0xe0) === 0xa0) return str(r, b & 0x1f, 'fixstr')
  switch (b) {
    case 0xc0: return { t: 'nil', v: null }
    case 0xc2: return { t: 'false', v: false }
    case 0xc3: return { t: 'true', v: true }
    case 0xc4: return bin(r, r.u8(), 'bin8')
    case 0xc5: return bin(r, r.u16(), 'bin16')
    case 0xc6: return bin(r, r.u32(), 'bin32')
    case 0xca: { const x = r.bytes(4); return { t: 'float32', v: x.readFloatBE(0) } }
    case 0xcb: { const x = r.bytes(8); return { t: 'float64', v: x.readDoubleBE(0) } }
    case 0xcc: return { t: 'uint8', v: r.u8() }
    case 0xcd: return { t: 'uint16', v: r.u16() }
    case 0xce: return { t: 'uint32', v: r.u32() }
    case 0xcf: { const x = r.bytes(8); return { t: 'uint64', v: x.readBigUInt64BE(0) } }
    case 0xd0: { const x = r.bytes(1); return { t: 'int8', v: x.readInt8(0) } }
    case 0xd1: { const x = r.bytes(2); return { t: 'int16', v: x.readInt16BE(0) } }
    case 0xd2: { const x = r.bytes(4); return { t: 'int32', v: x.readInt32BE(0) } }
    case 0xd3: { const x = r.bytes(8); return { t: 'int64', v: x.readBigInt64BE(0) } }
    case 0xd9: return str(r, r.u8(), 'str8')
    case 0xda: return str(r, r.u16(), 'str16')
    case 0xdb: return str(r, r.u32(), 'str32')
    case 0xdc: return arr(r, r.u16(), 'array16')
    case 0xdd: return arr(r, r.u32(), 'array32')
    case 0xde: return map(r, r.u16(), 'map16')
    case 0xdf: return map(r, r.u32(), 'map32')
    default: {
      // ext types: skip payload
      const sizes = { 0xd4: 1, 0xd5: 2, 0xd6: 4, 0xd7: 8, 0xd8: 16 }
      if (sizes[b]) { r.u8(); r.bytes(sizes[b]); return { t: 'fixext', v: null } }
      if (b === 0xc7) { const n = r.u8(); r.u8(); r.bytes(n); return { t: 'ext8', v: null } }
      if (b === 0xc8) { const n = r.u16(); r.u8(); r.bytes(n); return { t: 'ext16', v: null } }
      if (b === 0xc9) { const n = r.u32(); r.u8(); r.bytes(n); return { t: 'ext32', v: null } }
      throw new Error('bad type byte 0x' + b.toString(16))
    }
  }
}
function str(r, n, t) { return { t, n, v: r.bytes(n).toString('utf8') } }
function bin(r, n, t) { return { t, n, v: Buffer.from(r.bytes(n)) } }
function arr(r, n, t) { const items = []; for (let i = 0; i < n; i++) items.push(decode(r)); return { t, items } }
function map(r, n, t) { const entries = []; for (let i = 0; i < n; i++) entries.push([decode(r), decode(r)]); return { t, entries } }

function plain(x) {
  if (x.items) return x.items.map(plain)
  if (x.entries) { const o = {}; for (const [k, v] of x.entries) o[String(plain(k))] = plain(v); return o }
  return x.v
}

function jsonable(x) {
  if (x.items) return x.items.map(jsonable)
  if (x.entries) { const o = {}; for (const [k, v] of x.entries) o[String(plain(k))] = jsonable(v); return o }
  if (x.t.startsWith('bin')) return { bin: x.n, b64: x.v.toString('base64') }
  if (typeof x.v === 'bigint') return Number(x.v)
  return x.v
}

function show(x) {
  if (x.items) return `${x.t}[${x.items.map(show).join(', ')}]`
  if (x.entries) return `${x.t}{${x.entries.map(([k, v]) => show(k) + ': ' + show(v)).join(', ')}}`
  if (x.t.startsWith('str') || x.t === 'fixstr') {
    let s = x.v
    const extra = s.length > 160 ? `...(+${s.length - 160} chars)` : ''
    s = JSON.stringify(s.slice(0, 160))
    return x.t === 'fixstr' ? `fixstr ${s}${extra}` : `${x.t}(${x.n}) ${s}${extra}`
  }
  if (x.t.startsWith('bin')) {
    const s = x.v.length > 64 ? x.v.subarray(0, 64).toString('latin1') + '...' : x.v.toString('latin1')
    return `${x.t}(${x.n}) b${JSON.stringify(s)}`
  }
  if (x.t === 'nil' || x.t === 'true' || x.t === 'false') return x.t
  return `${x.t} ${x.v}`
}

// type signature; maps as {key:sig,...} with keys sorted
function sig(x) {
  if (x.items) return `${x.t}[${x.items.map(sig).join(',')}]`
  if (x.entries) {
    const parts = x.entries.map(([k, v]) => `${plain(k)}:${sig(v)}`).sort()
    return `${x.t}{${parts.join(',')}}`
  }
  return x.t
}

function loadDir(dir) {
  const files = fs.readdirSync(dir).filter((f) => /^conn-\d+\.(c2s|s2c)\.bin$/.test(f)).sort()
  const events = fs.existsSync(path.join(dir, 'events.jsonl'))
    ? fs.readFileSync(path.join(dir, 'events.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l))
    : []
  const msgs = []
  for (const f of files) {
    const [, conn, dir2] = /^conn-(\d+)\.(c2s|s2c)\.bin$/.exec(f)
    const c = Number(conn)
    const buf = fs.readFileSync(path.join(dir, f))
    const evs = events.filter((e) => e.conn === c && e.ev === dir2)
    const r = new Reader(buf)
    let i = 0
    while (r.p < buf.length) {
      const start = r.p
      let value
      try { value = decode(r) } catch (e) { msgs.push({ conn: c, dir: dir2, error: e.message, t: Infinity, i: i++ }); break }
      const end = r.p
      const ev = evs.find((e) => e.off < end && end <= e.off + e.len)
      msgs.push({ conn: c, dir: dir2, value, bytes: end - start, t: ev ? ev.t : i, i: i++ })
    }
  }
  msgs.sort((a, b) => (a.t - b.t) || (a.conn - b.conn) || (a.dir === b.dir ? a.i - b.i : 0))
  return msgs
}

function kind(m) {
  const top = m.value && m.value.items
  if (!top) return { kind: 'OTHER' }
  const type = top[0] && top[0].v
  if (type === 0) return { kind: 'REQUEST', msgid: plain(top[1]), method: plain(top[2]) }
  if (type === 1) return { kind: 'RESPONSE', msgid: plain(top[1]) }
  if (type === 2) return { kind: 'NOTIFY', method: plain(top[1]) }
  return { kind: 'OTHER' }
}

const [cmd, dir] = process.argv.slice(2)
if (!dir || !['list', 'summary', 'json'].includes(cmd)) {
  console.error('usage: mpdecode.js list|summary|json <dir>')
  process.exit(2)
}
const msgs = loadDir(dir)

if (cmd === 'json') {
  for (const m of msgs) {
    const d = m.dir === 'c2s' ? 'K->S' : 'S->K'
    if (m.error) { console.log(JSON.stringify({ conn: m.conn, dir: d, kind: 'ERROR', error: m.error })); continue }
    const k = kind(m)
    console.log(JSON.stringify({ t: m.t, conn: m.conn, dir: d, kind: k.kind, msgid: k.msgid,
                                 method: k.method, sig: sig(m.value), value: jsonable(m.value) }))
  }
} else if (cmd === 'list') {
  for (const m of msgs) {
    const d = m.dir === 'c2s' ? 'K->S' : 'S->K'
    if (m.error) { console.log(`c${m.conn} ${d} ERROR ${m.error}`); continue }
    const k = kind(m)
    const what = k.kind === 'REQUEST' ? `REQUEST  msgid=${k.msgid} method=${k.method}`
      : k.kind === 'RESPONSE' ? `RESPONSE msgid=${k.msgid}` : `${k.kind} ${k.method || ''}`
    console.log(`+${typeof m.t === 'number' ? m.t.toFixed(6) : m.t} c${m.conn} ${d} ${String(m.bytes).padEnd(5)} B  ${what}`)
    console.log('    ' + show(m.value))
  }
} else {
  // responses are attributed to the request with the same msgid on the same connection
  const pending = new Map()
  const rows = new Map()
  const add = (key, s) => { const t = rows.get(key) || new Map(); t.set(s, (t.get(s) || 0) + 1); rows.set(key, t) }
  for (const m of msgs) {
    if (m.error) { add(`${m.dir} ERROR`, m.error); continue }
    const k = kind(m)
    const top = m.value.items
    if (k.kind === 'REQUEST') {
      pending.set(`${m.conn}:${k.msgid}`, k.method)
      add(`K->S ${k.method} args`, sig(top[3]))
    } else if (k.kind === 'RESPONSE') {
      const method = pending.get(`${m.conn}:${k.msgid}`) || '?'
      add(`S->K ${method} response`, `error=${sig(top[2])} result=${sig(top[3])}`)
    } else {
      add(`${m.dir === 'c2s' ? 'K->S' : 'S->K'} ${k.kind}`, sig(m.value))
    }
  }
  for (const key of [...rows.keys()].sort()) {
    console.log(key)
    for (const [s, n] of [...rows.get(key).entries()].sort()) console.log(`  ${n} x ${s}`)
  }
}
