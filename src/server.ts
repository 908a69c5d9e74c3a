// Entry point: read .env (the environment wins), validate the configuration once, start.
import { config as loadDotenv } from 'dotenv'
import { loadConfig, ConfigError, type GatewayConfig } from './config.js'
import { buildApp } from './app.js'

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
      app.close().then(() => process.exit(0), () => process.exit(1))
    })
  }
  await app.listen({ port: config.port, host: config.host })
}

main().catch((err: unknown) => {
  process.stderr.write(`entra-gateway: failed to start: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
