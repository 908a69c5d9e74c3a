// One gateway, run as its own process so that the load generator does not share its event
// loop: exactly buildApp(loadConfig(env)) as production builds it, with the environment the
// bench passes in BENCH_GATEWAY_ENV (JSON) and nothing read from the bench's own environment.
// With WORKERS > 1 this process is the supervisor production runs (src/supervisor.ts) and its
// workers run this file too.
import cluster from 'node:cluster'
import { loadConfig } from '../src/config.js'
import { buildApp } from '../src/app.js'
import { supervise } from '../src/supervisor.js'

const env = JSON.parse(process.env.BENCH_GATEWAY_ENV ?? '{}') as Record<string, string>
const config = loadConfig(env)

if (config.workers > 1 && cluster.isPrimary) {
  // Ready once every worker listens; stopped as production is, with SIGTERM.
  let listening = 0
  cluster.on('listening', () => { if (++listening === config.workers) process.send?.({ type: 'ready', port: config.port }) })
  process.on('message', (m: { type?: string }) => { if (m.type === 'stop') process.kill(process.pid, 'SIGTERM') })
  process.on('disconnect', () => { process.kill(process.pid, 'SIGTERM') })
  await supervise(config)
} else {
  const app = await buildApp(config)
  await app.listen({ port: config.port, host: config.host })
  // Discovery runs in the background from onReady; wait for it so the first sign-in is not a race.
  await app.idp.get()
  if (cluster.isPrimary) {
    process.send?.({ type: 'ready', port: config.port })
    process.on('message', (m: { type?: string }) => {
      if (m.type !== 'stop') return
      // A clean exit, so that --cpu-prof writes its profile.
      app.close().finally(() => process.exit(0))
    })
    process.on('disconnect', () => { app.close().finally(() => process.exit(0)) })
  }
}
