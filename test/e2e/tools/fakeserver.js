#!/usr/bin/env node
'use strict'
// A scripted MsgPack:1 plugin server for testing the gateway's RPC client.
//   node fakeserver.js dump <script.json>            plugin info (query_cmd)
//   node fakeserver.js serve <socket> <script.json> <log.jsonl>
//
// script.json:
//   info     the plugin info object printed by dump ({Name, Version, ...})
//   pid_file if set, a file holding the pid announced as [2,"serverPid",pid]
//            right after each accept, and again before a response whenever
//            the file changed since the last announcement on that connection
//   modes    { <config.mode>: { <phase>: [step, ...] } } where a step is
//            {"call": "kong.x.y", "args": [...]}  ask the gateway for a PDK call
//            {"error": "text"}                    answer the current message with an error
//            "ret"                                end the event
//            {"forget": "No Plugin Instance %d"}  (first step only) the first
//            HandleEvent of this mode is answered with that error and the
//            instance is forgotten (Kong then starts a new one and retries)
// Every request received is appended to log.jsonl as
//   {conn, msgid, method, params, has_data, data}
// with bins shown as {"bin": length, "text": ...}.

const net = require('net')
const fs = require('fs')
const path = require('path')

const MSGPACK = path.join(__dirname, '../../../bench/peers/js/node_modules/@msgpack/msgpack')
const { Encoder, Decoder } = require(MSGPACK)

const [cmd, ...rest] = process.argv.slice(2)
if (cmd === 'dump') {
  const script = JSON.parse(fs.readFileSync(rest[0], 'utf8'))
  process.stdout.write(JSON.stringify({ Protocol: 'MsgPack:1', Plugins: [script.info] }))
  process.exit(0)
}
if (cmd !== 'serve' || rest.length < 3) {
  console.error('usage: fakeserver.js dump <script.json> | serve <socket> <script.json> <log.jsonl>')
  process.exit(2)
}
const [sockPath, scriptPath, logPath] = rest
const script = JSON.parse(fs.readFileSync(scriptPath, 'utf8'))
const logFd = fs.openSync(logPath, 'a')
const encoder = new Encoder()

function jsonable(v) {
  if (v instanceof Uint8Array) return { bin: v.length, text: Buffer.from(v).toString('latin1') }
  if (Array.isArray(v)) return v.map(jsonable)
  if (v && typeof v === 'object') { const o = {}; for (const k of Object.keys(v)) o[k] = jsonable(v[k]); return o }
  return v === undefined ? null : v
}

const instances = new Map()   // id -> { mode, config }
const forgotten = new Set()   // modes already answered with "forget"
const events = new Map()      // event id -> { steps, i }
let nextInstance = 0
let nextEvent = 0
let nconn = 0

function runStep(ev) {
  // returns [error, result] for the message that advances event `ev`
  const step = ev.steps[ev.i++]
  if (step === undefined || step === 'ret') {
    events.delete(ev.id)
    return [null, { EventId: ev.id, Data: 'ret' }]
  }
  if (step.error) {
    events.delete(ev.id)
    return [step.error, null]
  }
  return [null, { EventId: ev.id, Data: { Method: step.call, Args: step.args || [] } }]
}

function handle(method, params) {
  const p = params[0]
  switch (method) {
    case 'plugin.StartInstance': {
      const config = JSON.parse(p.Config)
      const id = nextInstance++
      instances.set(id, { mode: config.mode, config })
      return [null, { Name: p.Name, Id: id, Config: config, StartTime: Date.now() / 1000 }]
    }
    case 'plugin.CloseInstance':
      instances.delete(p)
      return [null, { Id: p }]
    case 'plugin.HandleEvent': {
      const inst = instances.get(p.InstanceId)
      if (!inst) return [`no plugin instance #${p.InstanceId}`, null]
      const steps = ((script.modes[inst.mode] || {})[p.EventName] || []).slice()
      if (steps[0] && steps[0].forget) {
        const first = steps.shift()
        if (!forgotten.has(inst.mode)) {
          forgotten.add(inst.mode)
          instances.delete(p.InstanceId)
          return [first.forget.replace('%d', p.InstanceId), null]
        }
      }
      const ev = { id: nextEvent++, steps, i: 0 }
      events.set(ev.id, ev)
      return runStep(ev)
    }
    default: {
      if (!method.startsWith('plugin.Step')) return [`method ${method} not implemented`, null]
      const ev = events.get(p.EventId)
      if (!ev) return [`event id ${p.EventId} not found`, null]
      return runStep(ev)
    }
  }
}

try { fs.unlinkSync(sockPath) } catch (e) { if (e.code !== 'ENOENT') throw e }
const server = net.createServer((c) => {
  const conn = ++nconn
  let buf = Buffer.alloc(0)
  let announced = null
  const announce = () => {
    if (!script.pid_file) return
    const pid = Number(fs.readFileSync(script.pid_file, 'utf8').trim())
    if (pid !== announced) {
      c.write(encoder.encode([2, 'serverPid', pid]))
      announced = pid
    }
  }
  announce()
  c.on('data', (chunk) => {
    buf = Buffer.concat([buf, chunk])
    let msg
    try {
      msg = new Decoder().decode(buf)
    } catch (e) {
      if (/Insufficient data/.test(e.message)) return
      throw e
    }
    buf = Buffer.alloc(0)
    const [, msgid, method, params] = msg
    const p0 = params[0]
    const rec = { conn, msgid, method, params: jsonable(params) }
    if (p0 && typeof p0 === 'object' && !(p0 instanceof Uint8Array)) {
      rec.has_data = Object.prototype.hasOwnProperty.call(p0, 'Data')
      rec.data = jsonable(p0.Data)
    }
    fs.writeSync(logFd, JSON.stringify(rec) + '\n')
    const [err, res] = handle(method, params)
    announce()
    c.write(encoder.encode([1, msgid, err, res]))
  })
  c.on('error', () => {})
})
server.listen(sockPath)
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0))
