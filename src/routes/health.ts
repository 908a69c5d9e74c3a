// Health: /healthz says the process is alive (no I/O); /readyz says whether it can serve
// (IdP metadata loaded, session store answering, upstream answering) and names what is down.
// Each route's upstream is checked too, as `upstream:<prefix or host>`; one that is down makes
// the gateway `degraded` (still 200): the rest of the site works, and taking every replica out
// of a load balancer because the admin panel is down would take the chat down with it.
import type { FastifyInstance } from 'fastify'
import type { GatewayConfig } from '../config.js'
import { JSON_NO_STORE } from '../pages/render.js'
import { createDirect } from '../egress/egress.js'

const CHECK_TIMEOUT_MS = 2000

async function withTimeout (what: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([what, new Promise((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms) })])
  } finally {
    clearTimeout(timer)
  }
}

export default async function healthRoutes (app: FastifyInstance, opts: { config: GatewayConfig }): Promise<void> {
  const upstreamHealthUrl = opts.config.upstreamUrl + opts.config.upstreamHealthPath
  const routeChecks = opts.config.routes.all.map(r => ({ name: `upstream:${r.name}`, url: r.upstreamUrl + r.healthPath }))
  const alive = JSON.stringify({ status: 'ok' })
  // The upstream is never asked through an outbound proxy, nor through a global dispatcher
  // someone installed (NODE_USE_ENV_PROXY): a connection of its own, like proxied requests.
  const direct = createDirect()
  app.addHook('onClose', async () => { await direct.close() })

  app.get('/healthz', { config: { session: false } }, (_request, reply) => { reply.headers(JSON_NO_STORE).send(alive) })

  // Anyone may ask, so each check answers `ok` or `down: <short fixed reason>`; what went
  // wrong in detail (addresses, error text) goes to the log only.
  app.get('/readyz', { config: { session: false } }, async (request, reply) => {
    const checkUpstream = async (url: string): Promise<void> => {
      let res: Response
      try {
        res = await direct.fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(CHECK_TIMEOUT_MS) })
      } catch (err) {
        throw new CheckFailed('not answering', err)
      }
      await res.body?.cancel()
      if (res.status >= 500) throw new CheckFailed(`answered ${res.status}`)
    }
    const checks: Record<string, Promise<void>> = {
      idp: app.idp.ready ? Promise.resolve() : Promise.reject(new CheckFailed('metadata not loaded', app.idp.lastError)),
      session_store: withTimeout(app.sessionStoreImpl.ping(), CHECK_TIMEOUT_MS).catch((err: unknown) => { throw new CheckFailed('not answering', err) }),
      upstream: checkUpstream(upstreamHealthUrl),
      upstream_capacity: app.upstream.saturated ? Promise.reject(new CheckFailed('at the in-flight request limit')) : Promise.resolve()
    }
    for (const route of routeChecks) checks[route.name] = checkUpstream(route.url)
    const names = Object.keys(checks)
    const results = await Promise.allSettled(Object.values(checks))
    const report: Record<string, string> = {}
    let ready = true
    let degraded = false
    results.forEach((r, i) => {
      const name = names[i] as string
      if (r.status === 'fulfilled') {
        report[name] = 'ok'
        return
      }
      if (name.startsWith('upstream:')) degraded = true
      else ready = false
      const failed = r.reason instanceof CheckFailed ? r.reason : new CheckFailed('failed', r.reason)
      report[name] = `down: ${failed.message}`
      const detail = failed.detail
      request.log.warn({ event: 'not_ready', check: name, reason: failed.message, detail: detail instanceof Error ? (detail as { code?: string }).code ?? detail.message : detail }, 'readiness check failed')
    })
    const status = !ready ? 'not_ready' : degraded ? 'degraded' : 'ready'
    return reply.code(ready ? 200 : 503).headers(JSON_NO_STORE).send(JSON.stringify({ status, checks: report }))
  })
}

/** A failed check: a short reason anyone may read, and the detail for the log. */
class CheckFailed extends Error {
  readonly detail: unknown
  constructor (reason: string, detail?: unknown) {
    super(reason)
    this.detail = detail
  }
}
