// Keeps the IdP's metadata loaded. The gateway starts even when the IdP is unreachable (it
// reports not-ready and retries in the background); a sign-in meanwhile gets a clear 503.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { Configuration } from 'openid-client'
import type { GatewayConfig } from '../config.js'
import { discover } from '../oidc/flow.js'

export interface IdpMetadata {
  /** True once discovery has succeeded. */
  readonly ready: boolean
  /** The last discovery failure, for /readyz and the log. */
  readonly lastError: string | undefined
  /** The loaded configuration, discovering now (once, shared) if it is not loaded yet. */
  get: () => Promise<Configuration>
}

declare module 'fastify' {
  interface FastifyInstance {
    idp: IdpMetadata
  }
}

async function discoveryPlugin (app: FastifyInstance, opts: { config: GatewayConfig }): Promise<void> {
  let loaded: Configuration | undefined
  let inflight: Promise<Configuration> | undefined
  let lastError: string | undefined
  let retryTimer: NodeJS.Timeout | undefined
  let attempt = 0
  let closed = false

  const load = async (): Promise<Configuration> => {
    if (loaded !== undefined) return loaded
    inflight ??= discover(opts.config, app.egress.fetch, (level, event, fields) => { app.log[level]({ event, ...fields }, event.replaceAll('_', ' ')) }).then(
      (c) => {
        loaded = c
        lastError = undefined
        inflight = undefined
        app.log.info({ event: 'idp_ready', issuer: opts.config.issuer }, 'identity provider metadata loaded')
        return c
      },
      (err: unknown) => {
        inflight = undefined
        lastError = describe(err)
        throw err
      })
    return await inflight
  }

  const retry = (): void => {
    if (closed || loaded !== undefined) return
    load().catch(() => {
      attempt++
      const delay = Math.min(30_000, 500 * 2 ** Math.min(attempt, 6))
      app.log.warn({ event: 'idp_unreachable', issuer: opts.config.issuer, reason: lastError, retryInMs: delay }, 'identity provider metadata could not be loaded')
      retryTimer = setTimeout(retry, delay)
      retryTimer.unref()
    })
  }

  app.decorate('idp', {
    get ready () { return loaded !== undefined },
    get lastError () { return lastError },
    get: load
  })
  app.addHook('onReady', async () => { retry() })
  app.addHook('onClose', async () => {
    closed = true
    if (retryTimer !== undefined) clearTimeout(retryTimer)
  })
}

function describe (err: unknown): string {
  if (!(err instanceof Error)) return String(err)
  const cause = err.cause instanceof Error ? `: ${err.cause.message}` : ''
  return `${err.message}${cause}`
}

export default fp(discoveryPlugin, { name: 'discovery', fastify: '5.x', dependencies: ['egress'] })
