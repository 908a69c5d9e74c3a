// Entry point: read .env (the environment wins), validate the configuration once, start.
import { config as loadDotenv } from 'dotenv'
import { loadConfig, ConfigError, type GatewayConfig } from './config.js'
import { buildApp } from './app.js'

const SHUTDOWN_DEADLINE_MS = 10_000

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
  const app = await buildApp(config)
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      app.log.info({ event: 'shutdown', signal }, 'shutting down')
      // Open chat streams would hold close() for ever; past the deadline they are cut (the
      // browser reconnects to another replica) so `docker stop` never ends in SIGKILL.
      const deadline = setTimeout(() => {
        app.log.warn({ event: 'shutdown_forced', afterMs: SHUTDOWN_DEADLINE_MS }, 'closing the connections still open')
        app.server.closeAllConnections()
      }, SHUTDOWN_DEADLINE_MS)
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
