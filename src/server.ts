// Entry point: read .env (the environment wins), validate the configuration once, start: one
// gateway in this process, or with WORKERS > 1 a primary that supervises that many
// (supervisor.ts), each of them this same code in a worker process.
import cluster from 'node:cluster'
import { config as loadDotenv } from 'dotenv'
import { loadConfig, ConfigError, type GatewayConfig } from './config.js'
import { buildApp } from './app.js'
import { answerMetricsRequests, supervise } from './supervisor.js'

/** How often, during the drain, connections whose response has ended are closed. */
const SWEEP_MS = 250

async function main (): Promise<void> {
  loadDotenv({ quiet: true })
  let config: GatewayConfig
  try {
    config = loadConfig(process.env)
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const line of err.problems) process.stderr.write(`entra-gateway: configuration error: ${line}\n`)
      process.exit(2)
    }
    throw err
  }
  if (config.workers > 1 && cluster.isPrimary) {
    await supervise(config)
    return
  }
  // A worker counts its requests; the primary serves METRICS_PORT with every worker's.
  const app = await buildApp(config, { metricsListener: !cluster.isWorker })
  if (cluster.isWorker) answerMetricsRequests(app.metrics.registry)
  const deadlineMs = config.shutdownTimeoutSeconds * 1000
  let stopping = false
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    // on, not once: a worker gets Ctrl-C's SIGINT and the primary's SIGTERM both, and a second
    // signal must not end the drain with the default action.
    process.on(signal, () => {
      if (stopping) return
      stopping = true
      app.log.info({ event: 'shutdown', signal, timeoutSeconds: config.shutdownTimeoutSeconds }, 'shutting down')
      // close() stops listening (new connections are refused; a request already on its way gets
      // 503) and closes the idle connections of that moment. One whose response ends later would
      // idle until the keep-alive timeout, so idle ones are swept until the end (only once no
      // new connection can come: closing it would turn a refusal into a reset).
      const sweep = setInterval(() => { if (!app.server.listening) app.server.closeIdleConnections() }, SWEEP_MS)
      sweep.unref()
      // Open chat streams would hold close() for ever; past the deadline they are cut (the
      // browser reconnects to another replica), well within Docker's stop timeout.
      const deadline = setTimeout(() => {
        app.log.warn({ event: 'shutdown_forced', afterMs: deadlineMs }, 'closing the connections still open')
        app.server.closeAllConnections()
        app.upstream.closeUpgraded()
      }, deadlineMs)
      deadline.unref()
      app.close().then(() => process.exit(0), () => process.exit(1))
    })
  }
  await app.listen({ port: config.port, host: config.host })
}

main().catch((err: unknown) => {
  process.stderr.write(`entra-gateway: failed to start: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
