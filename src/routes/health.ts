// Health: /healthz says the process is alive (no I/O); /readyz says whether it can serve
// (IdP metadata loaded, session store answering, upstream answering) and names what is down.
import type { FastifyInstance } from 'fastify'
import type { GatewayConfig } from '../config.js'
import { JSON_NO_STORE } from '../pages/render.js'

const CHECK_TIMEOUT_MS = 2000

async function withTimeout (what: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([what, new Promise((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms) })])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Why a check failed, in words safe for an unauthenticated caller: the error's code or
 * message without the internal addresses and URLs it may name (the log has those).
 */
export function publicReason (reason: unknown): string {
  const err = reason instanceof Error && reason.cause instanceof Error ? reason.cause : reason
  const code = (err as { code?: unknown }).code
  const text = typeof code === 'string' ? code : err instanceof Error ? err.message : String(err)
  return text
    .replace(/\b[a-z][a-z0-9+.-]*:\/\/\S+/gi, '<url>')
    .replace(/\[?[0-9a-f:]*:[0-9a-f:]+\]?:\d+|\b\d{1,3}(\.\d{1,3}){3}(:\d+)?\b/gi, '<address>')
}

export default async function healthRoutes (app: FastifyInstance, opts: { config: GatewayConfig }): Promise<void> {
  const upstreamHealthUrl = opts.config.upstreamUrl + opts.config.upstreamHealthPath
  const alive = JSON.stringify({ status: 'ok' })

  app.get('/healthz', (_request, reply) => { reply.headers(JSON_NO_STORE).send(alive) })

  app.get('/readyz', async (_request, reply) => {
    const checkUpstream = async (): Promise<void> => {
      const res = await fetch(upstreamHealthUrl, { redirect: 'manual', signal: AbortSignal.timeout(CHECK_TIMEOUT_MS) })
      await res.body?.cancel()
      if (res.status >= 500) throw new Error(`answered ${res.status}`)
    }
    const checks: Record<string, Promise<void>> = {
      idp: app.idp.ready ? Promise.resolve() : Promise.reject(new Error(app.idp.lastError ?? 'metadata not loaded yet')),
      session_store: withTimeout(app.sessionStoreImpl.ping(), CHECK_TIMEOUT_MS),
      upstream: checkUpstream()
    }
    const names = Object.keys(checks)
    const results = await Promise.allSettled(Object.values(checks))
    const report: Record<string, string> = {}
    let ready = true
    results.forEach((r, i) => {
      const name = names[i] as string
      if (r.status === 'fulfilled') report[name] = 'ok'
      else {
        ready = false
        report[name] = `down: ${publicReason(r.reason)}`
      }
    })
    return reply.code(ready ? 200 : 503).headers(JSON_NO_STORE).send(JSON.stringify({ status: ready ? 'ready' : 'not_ready', checks: report }))
  })
}
