// WORKERS > 1: this process becomes a node:cluster primary that serves nothing itself. It forks
// the workers (each a whole gateway from buildApp, all accepting on the one listening socket the
// primary holds), restarts one that dies (backing off while they keep dying young), forwards
// SIGTERM/SIGINT and waits for the workers' drain, and serves METRICS_PORT with every worker's
// metrics summed (prom-client's AggregatorRegistry). Workers never open the metrics port.
import cluster, { type Worker } from 'node:cluster'
import { createServer, type Server } from 'node:http'
import { pino } from 'pino'
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue, type Registry } from 'prom-client'
import type { GatewayConfig } from './config.js'
import { loggerOptions } from './logger.js'

/** The first restart waits this long; each early death doubles it, up to RESTART_MAX_MS. */
const RESTART_BASE_MS = 250
const RESTART_MAX_MS = 16_000
/** A worker that lived this long died of something other than a crash loop: back-off starts over. */
const STABLE_AFTER_MS = 30_000
/** With no worker serving, this many replacements in a row dying before they listen ends the primary. */
const MAX_FAILED_STARTS = 5
/** The primary waits this much past SHUTDOWN_TIMEOUT_SECONDS for workers to exit before killing them. */
const EXIT_GRACE_MS = 2000
/** How long a scrape waits for a worker's metrics; a worker that does not answer is left out. */
const METRICS_WAIT_MS = 2000

const METRICS_REQUEST = 'entra-gw:metrics'
const METRICS_REPLY = 'entra-gw:metrics-reply'

type MetricsJson = Array<MetricObjectWithValues<MetricValue<string>>>

/** The delay before starting a replacement after `deaths` early deaths in a row (1, 2, ...). */
export function restartDelayMs (deaths: number): number {
  return Math.min(RESTART_MAX_MS, RESTART_BASE_MS * 2 ** Math.max(0, deaths - 1))
}

/** In a worker: answers the primary's requests for this worker's metrics. */
export function answerMetricsRequests (registry: Registry): void {
  process.on('message', (m: { type?: string, id?: number }) => {
    if (m?.type !== METRICS_REQUEST) return
    registry.getMetricsAsJSON().then(
      metrics => process.send?.({ type: METRICS_REPLY, id: m.id, metrics }),
      () => process.send?.({ type: METRICS_REPLY, id: m.id, metrics: [] })
    )
  })
}

export async function supervise (config: GatewayConfig): Promise<void> {
  const log = pino(loggerOptions(config) as object)
  const listening = new Set<Worker>()
  const bornAt = new Map<Worker, number>()
  const restarts = new Set<NodeJS.Timeout>()
  let allUp = false
  let stopping = false
  let forcedExit = false
  let earlyDeaths = 0
  let failedStarts = 0
  let metricsServer: Server | undefined

  const fork = (): void => { bornAt.set(cluster.fork(), Date.now()) }

  const finish = (code: number): void => {
    metricsServer?.closeAllConnections()
    metricsServer?.close()
    log.info({ event: 'primary_exit', code }, 'all workers have exited')
    log.flush?.()
    process.exit(code)
  }

  const stop = (reason: string, code: number): void => {
    if (stopping) return
    stopping = true
    for (const timer of restarts) clearTimeout(timer)
    const workers = Object.values(cluster.workers ?? {}).filter(w => w !== undefined)
    log.info({ event: 'shutdown', reason, workers: workers.length, timeoutSeconds: config.shutdownTimeoutSeconds }, 'stopping the workers')
    if (workers.length === 0) { finish(code); return }
    // Each worker drains as a lone gateway does on SIGTERM (src/server.ts); past the deadline
    // and a little grace, one still running is killed.
    for (const w of workers) w.process.kill('SIGTERM')
    const deadline = setTimeout(() => {
      forcedExit = true
      for (const w of Object.values(cluster.workers ?? {})) {
        log.warn({ event: 'worker_killed', pid: w?.process.pid }, 'a worker did not exit in time')
        w?.process.kill('SIGKILL')
      }
    }, config.shutdownTimeoutSeconds * 1000 + EXIT_GRACE_MS)
    deadline.unref()
    exitCode = code
  }
  let exitCode = 0

  cluster.on('listening', (worker) => {
    listening.add(worker)
    failedStarts = 0
    if (!allUp && listening.size === config.workers) {
      allUp = true
      log.info({ event: 'workers_listening', workers: config.workers, pids: [...listening].map(w => w.process.pid) }, `${config.workers} workers are serving`)
    }
  })

  cluster.on('exit', (worker, code, signal) => {
    const served = listening.delete(worker)
    const lived = Date.now() - (bornAt.get(worker) ?? Date.now())
    bornAt.delete(worker)
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) finish(forcedExit ? 1 : exitCode)
      return
    }
    if (!allUp) {
      // A worker that cannot start (the port taken, the configuration refused) says why on its
      // own stderr; every worker would fail the same way.
      log.error({ event: 'worker_start_failed', pid: worker.process.pid, code, signal }, 'a worker could not start; stopping')
      stop('worker_start_failed', 1)
      return
    }
    if (!served) failedStarts++
    if (listening.size === 0 && failedStarts >= MAX_FAILED_STARTS) {
      log.error({ event: 'workers_failing', failedStarts }, 'no worker serves and replacements keep failing to start; stopping')
      stop('workers_failing', 1)
      return
    }
    earlyDeaths = lived < STABLE_AFTER_MS ? earlyDeaths + 1 : 1
    const delayMs = restartDelayMs(earlyDeaths)
    log.warn({ event: 'worker_exit', pid: worker.process.pid, code, signal, restartInMs: delayMs }, 'a worker died; starting another')
    const timer = setTimeout(() => { restarts.delete(timer); if (!stopping) fork() }, delayMs)
    restarts.add(timer)
  })

  // process.on, not once: a second signal (Ctrl-C reaches the whole process group) must not kill
  // the primary with its default action while the workers drain.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => { stop(signal, 0) })

  if (config.metricsPort !== undefined) metricsServer = await serveMetrics(config, log, listening)
  for (let i = 0; i < config.workers; i++) fork()
}

async function serveMetrics (config: GatewayConfig, log: pino.Logger, listening: Set<Worker>): Promise<Server> {
  let nextId = 0
  const pending = new Map<number, (metrics: MetricsJson) => void>()
  cluster.on('message', (_worker, m: { type?: string, id?: number, metrics?: MetricsJson }) => {
    if (m?.type !== METRICS_REPLY || m.id === undefined) return
    pending.get(m.id)?.(m.metrics ?? [])
  })
  const ask = async (worker: Worker): Promise<MetricsJson | undefined> => await new Promise(resolve => {
    const id = nextId++
    const timer = setTimeout(() => { pending.delete(id); resolve(undefined) }, METRICS_WAIT_MS)
    pending.set(id, metrics => { clearTimeout(timer); pending.delete(id); resolve(metrics) })
    try { worker.send({ type: METRICS_REQUEST, id }) } catch { clearTimeout(timer); pending.delete(id); resolve(undefined) }
  })
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || req.url !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n')
      return
    }
    // Only workers that serve are asked: one starting up has no metrics handler yet.
    Promise.all([...listening].map(ask))
      .then(async all => {
        const registry = AggregatorRegistry.aggregate(all.filter(m => m !== undefined))
        res.writeHead(200, { 'content-type': registry.contentType }).end(await registry.metrics())
      })
      .catch(() => res.writeHead(500).end())
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(config.metricsPort, config.host, () => resolve())
  })
  log.info({ event: 'metrics_listening', port: config.metricsPort }, 'metrics listener started (every worker, summed)')
  return server
}
