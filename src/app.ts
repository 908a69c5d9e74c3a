// The app factory: everything the gateway is, built from one validated configuration.
// Production (server.ts) and the tests start exactly this.
import { randomUUID } from 'node:crypto'
import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { GatewayConfig } from './config.js'
import { lazyChildLogger, loggerOptions } from './logger.js'
import type { GatewayStore } from './session/store.js'
import sessionPlugin from './session/plugin.js'
import egressPlugin from './egress/plugin.js'
import pagesPlugin from './pages/plugin.js'
import discoveryPlugin from './auth/discovery.js'
import metricsPlugin from './metrics/plugin.js'
import tokensPlugin from './tokens/plugin.js'
import signInPlugin from './auth/signin.js'
import idpLogoutPlugin from './auth/idp-logout.js'
import signOutPlugin from './auth/signout.js'
import bearerPlugin from './auth/bearer.js'
import authenticatePlugin from './auth/authenticate.js'
import identityPlugin from './identity/signer.js'
import tokenRoutes from './routes/token.js'
import directoryRoutes from './routes/directory.js'
import gatePlugin from './auth/gate.js'
import healthRoutes from './routes/health.js'
import userinfoRoutes from './routes/userinfo.js'
import forwardAuthRoutes from './routes/forward-auth.js'
import proxyPlugin from './proxy/plugin.js'
import upstreamPlugin from './proxy/upstream.js'
import { StoreUnavailableError } from './session/store.js'

export interface BuildOptions {
  /** A pino logger option or instance; defaults to JSON at LOG_LEVEL. */
  logger?: FastifyServerOptions['logger']
  /** A session store to use instead of the one SESSION_STORE names (shared by tests). */
  store?: GatewayStore
  /** false: count metrics but open no METRICS_PORT listener (a worker: the primary serves them). */
  metricsListener?: boolean
}

export async function buildApp (config: GatewayConfig, opts: BuildOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: opts.logger ?? loggerOptions(config),
    // X-Forwarded-* from the client are believed only from these addresses.
    trustProxy: config.trustedProxies.length > 0 ? config.trustedProxies : false,
    // No per-request log lines: the hot path stays quiet; sign-ins, denials and errors are logged.
    logController: new LogController({ disableRequestLogging: true }),
    childLoggerFactory: lazyChildLogger,
    genReqId: () => randomUUID(),
    // Proxied bodies are streamed and not limited; this limit is for the gateway's own routes.
    bodyLimit: 64 * 1024,
    return503OnClosing: true,
    // Streams and uploads may last long: no limit on a whole request (Node's default cuts at
    // 300 s) and none on a quiet socket (connectionTimeout 0), so nothing cuts a body or a stream.
    requestTimeout: 0,
    connectionTimeout: 0,
    // A client that is idle between requests, or never finishes its headers, holds a socket:
    // both are bounded. Node checks the headers deadline every connectionsCheckingInterval
    // (30 s by default, too coarse for a short deadline).
    keepAliveTimeout: config.keepAliveTimeoutSeconds * 1000,
    http: {
      // Node checks headersTimeout against the requestTimeout it is created with.
      requestTimeout: 0,
      headersTimeout: config.headersTimeoutSeconds * 1000,
      connectionsCheckingInterval: Math.min(30_000, config.headersTimeoutSeconds * 250)
    },
    routerOptions: { ignoreDuplicateSlashes: false }
  })

  // Settings read differently from LibreChat, or not used: said once, never silently.
  for (const n of config.notices) app.log[n.level]({ event: 'config_notice', variable: n.variable }, n.message)

  app.setErrorHandler((err: Error & { statusCode?: number }, request, reply) => {
    if (err instanceof StoreUnavailableError) {
      // Logged once per outage by the store itself, not once per request.
      return reply.header('retry-after', '5').problem({
        status: 503,
        error: 'session_store_unavailable',
        message: 'The gateway cannot reach its session store right now.',
        page: { title: 'Temporarily unavailable', body: '<p>The gateway cannot check your session right now because its session store is not answering. Please try again in a minute; if it keeps happening, tell your administrator.</p>' }
      })
    }
    const status = err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500
    request.log[status >= 500 ? 'error' : 'info']({ event: 'error', err }, 'request failed')
    return reply.problem({
      status,
      error: status >= 500 ? 'internal_error' : 'bad_request',
      message: status >= 500 ? 'Something went wrong in the gateway.' : 'The request could not be understood.',
      page: {
        title: status >= 500 ? 'Something went wrong' : 'Bad request',
        body: status >= 500
          ? '<p>Something went wrong in the gateway. Please try again; if it keeps happening, give the request id below to your helpdesk.</p>'
          : '<p>The request could not be understood.</p>'
      }
    })
  })

  // First: the pages plugin fetches OPENID_IMAGE_URL while it registers.
  await app.register(egressPlugin, { config })
  await app.register(pagesPlugin, { config })
  await app.register(sessionPlugin, { config, store: opts.store })
  await app.register(metricsPlugin, { config, listen: opts.metricsListener ?? true })
  await app.register(discoveryPlugin, { config })
  await app.register(tokensPlugin, { config })
  await app.register(idpLogoutPlugin, { config })
  await app.register(signInPlugin, { config })
  await app.register(signOutPlugin, { config })
  await app.register(bearerPlugin, { config })
  await app.register(authenticatePlugin, { config })
  await app.register(identityPlugin, { config })
  await app.register(gatePlugin, { config })
  await app.register(healthRoutes, { config })
  await app.register(userinfoRoutes, { config })
  await app.register(tokenRoutes, { config })
  await app.register(directoryRoutes, { config })
  await app.register(forwardAuthRoutes, { config })
  await app.register(upstreamPlugin, { config })
  await app.register(proxyPlugin, { config })
  return app
}
