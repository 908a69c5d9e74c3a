// Prometheus metrics on a separate listener (METRICS_PORT), never on the public port. The
// counters always exist (plugins count into them); they are served only when configured.
import { createServer, type Server } from 'node:http'
import fp from 'fastify-plugin'
import { Registry, Counter, Gauge, Histogram, collectDefaultMetrics } from 'prom-client'
import type { FastifyInstance } from 'fastify'
import type { GatewayConfig } from '../config.js'

export interface Metrics {
  registry: Registry
  requests: Counter<'route_class' | 'status'>
  upstreamSeconds: Histogram<'status'>
  signIns: Counter<'result'>
  denials: Counter<'reason'>
  refreshes: Counter<'result'>
  graphCalls: Counter<'result'>
  graphThrottles: Counter
  sseOpen: Gauge
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Metrics
  }
}

export function createMetrics (sessionCount: () => number | undefined): Metrics {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'entra_gateway_' })
  const m: Metrics = {
    registry,
    requests: new Counter({ name: 'entra_gateway_requests_total', help: 'Requests answered, by route class (proxy, auth, health, api) and status code', labelNames: ['route_class', 'status'], registers: [registry] }),
    upstreamSeconds: new Histogram({ name: 'entra_gateway_upstream_duration_seconds', help: 'Time from request to the end of the proxied response', labelNames: ['status'], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60], registers: [registry] }),
    signIns: new Counter({ name: 'entra_gateway_sign_ins_total', help: 'Completed sign-ins (result="success") and failed ones by reason', labelNames: ['result'], registers: [registry] }),
    denials: new Counter({ name: 'entra_gateway_denials_total', help: 'Requests refused by the authorization decision, by reason', labelNames: ['reason'], registers: [registry] }),
    refreshes: new Counter({ name: 'entra_gateway_token_refreshes_total', help: 'Token refreshes and re-checks, by result (success, invalid_grant, idp_error, unreachable, ...)', labelNames: ['result'], registers: [registry] }),
    graphCalls: new Counter({ name: 'entra_gateway_graph_requests_total', help: 'Microsoft Graph operations by result (success, failure)', labelNames: ['result'], registers: [registry] }),
    graphThrottles: new Counter({ name: 'entra_gateway_graph_throttled_total', help: 'Microsoft Graph answers 429 (throttled)', registers: [registry] }),
    sseOpen: new Gauge({ name: 'entra_gateway_sse_streams_open', help: 'Server-sent event streams being proxied now', registers: [registry] })
  }
  // eslint-disable-next-line no-new
  new Gauge({
    name: 'entra_gateway_active_sessions',
    help: 'Sessions held by the memory store (not reported for Redis)',
    registers: [registry],
    collect () { const n = sessionCount(); if (n !== undefined) this.set(n) }
  })
  return m
}

function routeClass (url: string | undefined): string {
  if (url === undefined) return 'proxy'
  if (url === '/healthz' || url === '/readyz') return 'health'
  if (url.startsWith('/oauth2/')) return url.startsWith('/oauth2/sign') ? 'auth' : 'api'
  return 'proxy'
}

async function metricsPlugin (app: FastifyInstance, opts: { config: GatewayConfig, listen?: boolean }): Promise<void> {
  const store = app.sessionStoreImpl as { size?: number }
  const metrics = createMetrics(() => store.size)
  app.decorate('metrics', metrics)
  const port = opts.config.metricsPort
  if (port === undefined) return

  app.addHook('onResponse', async (request, reply) => {
    const cls = routeClass(request.routeOptions.url === '/*' || request.routeOptions.url === '/' ? undefined : request.routeOptions.url)
    const status = String(reply.statusCode)
    metrics.requests.inc({ route_class: cls, status })
    if (cls === 'proxy') metrics.upstreamSeconds.observe({ status }, reply.elapsedTime / 1000)
  })

  // A worker of WORKERS > 1 counts; its primary serves the port with every worker's counts.
  if (opts.listen === false) return
  let server: Server | undefined
  app.addHook('onReady', async () => {
    server = createServer((req, res) => {
      if (req.method !== 'GET' || req.url !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n')
        return
      }
      metrics.registry.metrics().then(
        text => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
        () => res.writeHead(500).end()
      )
    })
    await new Promise<void>((resolve, reject) => {
      server?.once('error', reject)
      server?.listen(port, opts.config.host, () => resolve())
    })
    app.log.info({ event: 'metrics_listening', port }, 'metrics listener started')
  })
  app.addHook('onClose', async () => {
    if (server === undefined) return
    server.closeAllConnections()
    await new Promise<void>(resolve => server?.close(() => resolve()))
  })
}

export default fp(metricsPlugin, { name: 'metrics', fastify: '5.x', dependencies: ['session'] })
