'use strict'
// probe on the Kong JS PDK: makes the PDK calls listed in its config and
// writes, per phase, one JSON line {tag, probe_phase, calls:[{method,args,data,err}]}
// to host:port over TCP.  config.calls is JSON text:
//   {"access": [["kong.ctx.shared.set","k","v"], ...], "response": [...], "log": [...]}
// kong.response.exit / kong.response.error end the phase (the gateway sends
// no Step after them).  A call the gateway never answers (a PDK error) leaves
// the phase hanging, so its line is never written.

const net = require('net')

const TERMINAL = new Set(['kong.response.exit', 'kong.response.error'])

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

function plain(v) {
  if (v instanceof Uint8Array) return { bin: Buffer.from(v).toString('base64') }
  return v === undefined ? null : v
}

class Probe {
  constructor(config) {
    this.config = config
    this.calls = JSON.parse(config.calls || '{}')
  }

  async run(kong, phase) {
    const out = []
    for (const [method, ...args] of (this.calls[phase] || [])) {
      let fn = kong
      for (const seg of method.split('.').slice(1)) fn = fn[seg]
      const rec = { method, args, data: null, err: null }
      out.push(rec)
      try {
        rec.data = plain(await fn(...args))
      } catch (e) {
        rec.err = String(e && e.message || e)
      }
      if (TERMINAL.has(method)) break
    }
    await send(this.config, JSON.stringify({ tag: this.config.tag, probe_phase: phase, calls: out }))
  }

  async access(kong) { return this.run(kong, 'access') }
  async response(kong) { return this.run(kong, 'response') }
  async log(kong) { return this.run(kong, 'log') }
}

module.exports = {
  Plugin: Probe,
  Name: 'probe',
  Version: '0.1.0',
  Priority: 20,
  Schema: [
    { host: { type: 'string', default: '127.0.0.1' } },
    { port: { type: 'integer', required: true } },
    { timeout: { type: 'integer', default: 10000 } },
    { calls: { type: 'string', default: '{}' } },
    { tag: { type: 'string', default: '' } },
  ],
}
