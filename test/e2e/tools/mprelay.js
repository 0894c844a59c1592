#!/usr/bin/env node
'use strict'
// Recording relay for a Unix-socket MessagePack-RPC link.
//   node mprelay.js <listen.sock> <target.sock> <outdir>
// Accepts on <listen.sock>, connects each client to <target.sock> and copies
// bytes both ways, saving conn-NNN.c2s.bin / conn-NNN.s2c.bin (c = client =
// gateway, s = plugin server) and events.jsonl ({t, conn, ev, off, len}),
// the same layout as the kong-wire fixtures.  Connections that carried no
// bytes are not saved.  Stops on SIGTERM/SIGINT.

const net = require('net')
const fs = require('fs')
const path = require('path')

const [listenPath, targetPath, outDir] = process.argv.slice(2)
if (!outDir) {
  console.error('usage: mprelay.js <listen.sock> <target.sock> <outdir>')
  process.exit(2)
}
fs.mkdirSync(outDir, { recursive: true })
const t0 = process.hrtime.bigint()
const events = fs.openSync(path.join(outDir, 'events.jsonl'), 'a')
let nconn = 0
let saved = 0

function now() {
  return Number(process.hrtime.bigint() - t0) / 1e9
}

function event(obj) {
  fs.writeSync(events, JSON.stringify(obj) + '\n')
}

try { fs.unlinkSync(listenPath) } catch (e) { if (e.code !== 'ENOENT') throw e }

const server = net.createServer((client) => {
  const id = ++nconn
  let fileNo = 0            // assigned on first byte, in order of first data
  const off = { c2s: 0, s2c: 0 }
  const fds = {}
  const upstream = net.connect(targetPath)

  function record(dir, chunk) {
    if (!fileNo) {
      fileNo = ++saved
      event({ t: now(), conn: fileNo, ev: 'open' })
    }
    if (!fds[dir]) {
      const name = `conn-${String(fileNo).padStart(3, '0')}.${dir}.bin`
      fds[dir] = fs.openSync(path.join(outDir, name), 'a')
    }
    fs.writeSync(fds[dir], chunk)
    event({ t: now(), conn: fileNo, ev: dir, off: off[dir], len: chunk.length })
    off[dir] += chunk.length
  }

  client.on('data', (chunk) => { record('c2s', chunk); upstream.write(chunk) })
  upstream.on('data', (chunk) => { record('s2c', chunk); client.write(chunk) })
  client.on('end', () => { if (fileNo) event({ t: now(), conn: fileNo, ev: 'close_c2s' }); upstream.end() })
  upstream.on('end', () => { if (fileNo) event({ t: now(), conn: fileNo, ev: 'close_s2c' }); client.end() })
  const shut = () => { client.destroy(); upstream.destroy() }
  client.on('error', shut)
  upstream.on('error', shut)
  client.on('close', () => { upstream.destroy(); for (const d in fds) { try { fs.closeSync(fds[d]) } catch (e) {} } })
})

server.listen(listenPath, () => { console.log(`relay ${listenPath} -> ${targetPath}, saving to ${outDir}`) })
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => { server.close(); try { fs.unlinkSync(listenPath) } catch (e) {} process.exit(0) })
}
