// The ceiling for any proxy written in Node: a node:http server that forwards each request
// with undici's Pool.stream (the gateway's pool settings), and nothing else: no auth, no
// session, no framework. Only the hop-by-hop headers are dropped, as any proxy must (undici
// refuses some of them). Run as its own process by the bench; the upstream URL comes in
// BENCH_UPSTREAM_URL.
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { Pool } from 'undici'

const upstream = process.env.BENCH_UPSTREAM_URL
if (upstream === undefined) throw new Error('BENCH_UPSTREAM_URL is not set')
const pool = new Pool(upstream, { connections: null, pipelining: 1, keepAliveTimeout: 60_000, headersTimeout: 0, bodyTimeout: 0 })

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade'])

const server = http.createServer((req, res) => {
  const headers: string[] = []
  const raw = req.rawHeaders
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string
    if (!HOP_BY_HOP.has(name.toLowerCase())) headers.push(name, raw[i + 1] as string)
  }
  const method = req.method ?? 'GET'
  const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined
  pool.stream({ path: req.url ?? '/', method, headers, body: hasBody ? req : null }, ({ statusCode, headers: upstreamHeaders }) => {
    const out: Record<string, string | string[]> = {}
    for (const [name, value] of Object.entries(upstreamHeaders)) {
      if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value
    }
    res.writeHead(statusCode, out)
    return res
  }, (err) => {
    if (err === null) return
    if (!res.headersSent) { res.writeHead(502, { 'content-type': 'text/plain' }); res.end('bad gateway') } else res.destroy(err)
  })
})
// As the gateway and the upstream: idle keep-alive connections stay open between rounds.
server.keepAliveTimeout = 65_000

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo
  process.send?.({ type: 'ready', port })
})
const stop = (): void => { server.closeAllConnections(); server.close(() => { pool.destroy().finally(() => process.exit(0)) }) }
process.on('message', (m: { type?: string }) => { if (m.type === 'stop') stop() })
process.on('disconnect', stop)
