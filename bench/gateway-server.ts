// One gateway, run as its own process so that the load generator does not share its event
// loop: exactly buildApp(loadConfig(env)) as production builds it, with the environment the
// bench passes in BENCH_GATEWAY_ENV (JSON) and nothing read from the bench's own environment.
import { loadConfig } from '../src/config.js'
import { buildApp } from '../src/app.js'

const env = JSON.parse(process.env.BENCH_GATEWAY_ENV ?? '{}') as Record<string, string>
const config = loadConfig(env)
const app = await buildApp(config)
await app.listen({ port: config.port, host: config.host })
// Discovery runs in the background from onReady; wait for it so the first sign-in is not a race.
await app.idp.get()
process.send?.({ type: 'ready', port: config.port })

process.on('message', (m: { type?: string }) => {
  if (m.type !== 'stop') return
  // A clean exit, so that --cpu-prof writes its profile.
  app.close().finally(() => process.exit(0))
})
process.on('disconnect', () => { app.close().finally(() => process.exit(0)) })
