// The bench's upstream, run as its own process: a fixed small JSON body on every path
// (keep-alive, Content-Length), an SSE route whose events carry the time they were written,
// and /clock for checking that the parent reads the same monotonic clock.
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { JSON_BODY } from './constants.js'

const body = Buffer.from(JSON_BODY)
const jsonHeaders = { 'content-type': 'application/json; charset=utf-8', 'content-length': String(body.length), 'cache-control': 'no-store' }

const MAX_EVENTS = 10_000

const server = http.createServer((req, res) => {
  const url = req.url ?? '/'
  if (url.startsWith('/sse')) { sse(url, res); return }
  if (url === '/clock') {
    const now = process.hrtime.bigint().toString()
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(now.length) })
    res.end(now)
    return
  }
  res.writeHead(200, jsonHeaders)
  res.end(body)
})
// Pooled keep-alive connections from nginx and the gateway stay open between rounds.
server.keepAliveTimeout = 65_000

/** `/sse?n=200&interval=20`: n events, one every interval ms, each stamped with hrtime just before the write. */
function sse (url: string, res: http.ServerResponse): void {
  const q = new URL(url, 'http://x').searchParams
  const n = Math.min(MAX_EVENTS, Math.max(1, Number(q.get('n') ?? 100) || 100))
  const interval = Math.min(1000, Math.max(1, Number(q.get('interval') ?? 20) || 20))
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache, no-transform', 'x-accel-buffering': 'no' })
  res.flushHeaders()
  let sent = 0
  const timer = setInterval(() => {
    // A token-sized payload, as a chat stream sends, after the timestamp.
    res.write(`id: ${sent}\ndata: ${process.hrtime.bigint().toString()} {"text":" token"}\n\n`)
    sent += 1
    if (sent >= n) { clearInterval(timer); res.end() }
  }, interval)
  res.on('close', () => clearInterval(timer))
}

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo
  process.send?.({ type: 'ready', port })
})
process.on('message', (m: { type?: string }) => {
  if (m.type === 'stop') { server.closeAllConnections(); server.close(() => process.exit(0)) }
})
// The parent went away: do not outlive it.
process.on('disconnect', () => process.exit(0))
