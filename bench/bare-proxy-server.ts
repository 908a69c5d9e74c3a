// A reference point between nginx and the gateway: Fastify with @fastify/http-proxy as it
// comes (no session, no gate, no identity headers), with the gateway's undici pool settings.
// Run as its own process by the bench; the upstream URL comes in BENCH_UPSTREAM_URL.
import Fastify from 'fastify'
import httpProxy from '@fastify/http-proxy'

const upstream = process.env.BENCH_UPSTREAM_URL
if (upstream === undefined) throw new Error('BENCH_UPSTREAM_URL is not set')
const app = Fastify({ logger: false })
await app.register(httpProxy, {
  upstream,
  undici: { connections: 128, pipelining: 1, keepAliveTimeout: 60_000, bodyTimeout: 0, headersTimeout: 0 }
})
await app.listen({ port: 0, host: '127.0.0.1' })
const address = app.server.address()
process.send?.({ type: 'ready', port: typeof address === 'object' && address !== null ? address.port : 0 })
process.on('message', (m: { type?: string }) => {
  if (m.type === 'stop') app.close().finally(() => process.exit(0))
})
process.on('disconnect', () => { app.close().finally(() => process.exit(0)) })
