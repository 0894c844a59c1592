'use strict'
// bodylog on the Kong JS PDK: a reference peer for the test gateway.
//   access:   kong.request.getRawBody([max_body_arg]); kong.ctx.shared.set("bodylog_id", n)
//   response: kong.ctx.shared.get("bodylog_id"); kong.service.response.getRawBody()
//   log:      kong.ctx.shared.get("bodylog_id"); kong.log.serialize(); one JSON line
//             (serialize + request.body/response.body + bodylog_id) to host:port over TCP

const net = require('net')

let counter = 0
const bodies = new Map()

function text(b) {
  if (b === undefined || b === null) return null
  return Buffer.from(b).toString('utf8')
}

function send(config, line) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: config.host, port: config.port })
    const done = (why) => () => {
      console.error(`collector ${config.host}:${config.port}: ${why}, line lost`)
      sock.destroy()
      resolve()
    }
    sock.setTimeout(config.timeout)
    sock.on('timeout', done('timeout'))
    sock.on('error', (e) => done(e.message)())
    sock.on('connect', () => sock.end(line + '\n'))
    sock.on('close', resolve)
  })
}

class BodyLog {
  constructor(config) {
    this.config = config
  }

  async access(kong) {
    const raw = (this.config.max_body_arg === null || this.config.max_body_arg === undefined)
      ? await kong.request.getRawBody()
      : await kong.request.getRawBody(this.config.max_body_arg)
    const id = ++counter
    bodies.set(id, { request: text(raw) })
    await kong.ctx.shared.set('bodylog_id', id)
  }

  async response(kong) {
    const id = await kong.ctx.shared.get('bodylog_id')
    const body = await kong.service.response.getRawBody()
    const entry = bodies.get(id)
    if (entry) entry.response = text(body)
  }

  async log(kong) {
    const id = await kong.ctx.shared.get('bodylog_id')
    const record = JSON.parse(await kong.log.serialize())
    const entry = (id !== undefined && bodies.get(id)) || {}
    bodies.delete(id)
    if (entry.request !== undefined) record.request.body = entry.request
    if (entry.response !== undefined) record.response.body = entry.response
    record.bodylog_id = id === undefined ? null : id
    await send(this.config, JSON.stringify(record))
  }
}

module.exports = {
  Plugin: BodyLog,
  Name: 'bodylog',
  Version: '0.1.0',
  Priority: 10,
  Schema: [
    { host: { type: 'string', default: '127.0.0.1' } },
    { port: { type: 'integer', required: true } },
    { timeout: { type: 'integer', default: 10000 } },
    { max_body_arg: { type: 'integer' } },
  ],
}
