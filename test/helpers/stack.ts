// Starts the real parts for an end-to-end test: the Entra-shaped IdP (oidc-provider), the
// demo upstream, and the gateway from buildApp, all on free loopback ports. Log lines are
// captured so tests can check what the gateway says (and that it never says a secret).
import { Writable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.js'
import { loadConfig, type GatewayConfig } from '../../src/config.js'
import { loggerOptions } from '../../src/logger.js'
import type { GatewayStore } from '../../src/session/store.js'
import { startIdp, DEMO_USERS, type Idp, type IdpClient, type IdpUser, type StartIdpOptions } from '../../dev/idp.js'
import { DEV_CLIENT_ID } from '../../dev/client-id.js'
import { startUpstream, type UpstreamRequest } from '../../dev/upstream.js'

/** What the stack needs of an upstream: the demo one or a test's own stand-in. */
export interface StackUpstream { url: string, requests: UpstreamRequest[], close: () => Promise<void> }
import { withFreePort } from './redis.js'
import { startGraph, type Graph, type StartGraphOptions } from '../../dev/graph.js'

export const CLIENT_ID = DEV_CLIENT_ID
export const CLIENT_SECRET = 'gateway-test-secret-value-0123456789'
export const SESSION_SECRET = 'test-session-secret-0123456789-abcdefghij'

export interface Stack {
  idp: Idp
  /** The Microsoft Graph stand-in, when StackOptions.graph asked for one. */
  graph: Graph | undefined
  upstream: StackUpstream
  app: FastifyInstance
  /** The gateway's session store (the one passed in, or the one SESSION_STORE made). */
  store: GatewayStore
  config: GatewayConfig
  url: string
  logs: Array<Record<string, unknown>>
  /** Every log line as written, to search for secrets. */
  rawLogs: () => string
  close: () => Promise<void>
}

export interface StackOptions {
  env?: Record<string, string | undefined>
  /** More settings that name the gateway's own origin (known once its port is). */
  envAt?: (origin: string) => Record<string, string | undefined>
  users?: IdpUser[]
  store?: GatewayStore
  /** More of the gateway's client registration at the IdP (logout URLs), given the gateway's origin. */
  client?: (origin: string) => Partial<IdpClient>
  /** More options of the IdP the stack starts (e.g. its realm). */
  idpOptions?: Partial<StartIdpOptions>
  /** Reuse an IdP (e.g. one started earlier or deliberately down). */
  idp?: Idp
  /** Point the gateway at this issuer instead of the IdP's (e.g. an unreachable one). */
  issuer?: string
  upstream?: StackUpstream
  /** Start a Graph stand-in trusting this IdP, and point GRAPH_API_URL at it. */
  graph?: Omit<StartGraphOptions, 'issuer'>
  /** Listen here (a port the caller already wrote into a proxy's configuration) instead of a free one. */
  port?: number
  /**
   * DOMAIN_SERVER's host name instead of 127.0.0.1 (the gateway still listens there): a name
   * under `.localhost`, which browsers (and the scripted one) resolve to loopback.
   */
  publicHost?: string
  /** More settings, once the parts have started (e.g. a NO_PROXY naming the IdP's port). */
  envAfterStart?: (parts: { idp: Idp, graph: Graph | undefined, upstream: StackUpstream }) => Record<string, string>
}

export function logCapture (): { stream: Writable, logs: Array<Record<string, unknown>>, raw: string[] } {
  const logs: Array<Record<string, unknown>> = []
  const raw: string[] = []
  const stream = new Writable({
    write (chunk: Buffer, _enc, cb) {
      const text = chunk.toString()
      raw.push(text)
      for (const line of text.split('\n')) if (line.trim() !== '') logs.push(JSON.parse(line) as Record<string, unknown>)
      cb()
    }
  })
  return { stream, logs, raw }
}

export async function startStack (opts: StackOptions = {}): Promise<Stack> {
  // The port goes into DOMAIN_SERVER and the IdP's redirect URIs before the gateway listens.
  if (opts.port !== undefined) return await startStackOn(opts.port, opts)
  return await withFreePort(async port => await startStackOn(port, opts))
}

async function startStackOn (port: number, opts: StackOptions): Promise<Stack> {
  const origin = `http://${opts.publicHost ?? '127.0.0.1'}:${port}`
  const env = { ...opts.env, ...opts.envAt?.(origin) }
  const callback = env.OPENID_CALLBACK_URL ?? '/oauth/openid/callback'
  const idp = opts.idp ?? await startIdp({
    clients: [{ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: [origin + callback], post_logout_redirect_uris: [origin + '/', origin + '/bye', origin + '/oauth2/signed_out'], ...opts.client?.(origin) }],
    users: opts.users ?? DEMO_USERS,
    ...opts.idpOptions
  })
  const upstream: StackUpstream = opts.upstream ?? await startUpstream()
  const graph = opts.graph !== undefined ? await startGraph({ ...opts.graph, issuer: idp.issuer }) : undefined
  if (graph !== undefined) env.GRAPH_API_URL ??= graph.url
  Object.assign(env, opts.envAfterStart?.({ idp, graph, upstream }))
  const stopOwn = async (): Promise<void> => {
    await graph?.close().catch(() => {})
    // A test may already have stopped a dependency on purpose.
    if (opts.upstream === undefined) await upstream.close().catch(() => {})
    if (opts.idp === undefined) await idp.close().catch(() => {})
  }
  let config: GatewayConfig
  try {
    config = loadConfig({
      OPENID_ISSUER: (opts.issuer ?? idp.issuer) + '/', // the guide's form, with a trailing slash
      OPENID_CLIENT_ID: CLIENT_ID,
      OPENID_CLIENT_SECRET: CLIENT_SECRET,
      OPENID_SESSION_SECRET: SESSION_SECRET,
      DOMAIN_SERVER: origin,
      UPSTREAM_URL: upstream.url,
      HOST: '127.0.0.1',
      PORT: String(port),
      LOG_LEVEL: 'info',
      ...env
    })
  } catch (err) {
    await stopOwn()
    throw err
  }
  const capture = logCapture()
  let app: FastifyInstance | undefined
  try {
    app = await buildApp(config, { logger: { ...(loggerOptions(config) as object), stream: capture.stream }, store: opts.store })
    await app.listen({ port, host: '127.0.0.1' })
  } catch (err) {
    // Nothing is left running, whether this fails for good or is retried on another port.
    await app?.close().catch(() => {})
    await stopOwn()
    throw err
  }
  return {
    idp,
    graph,
    upstream,
    app,
    store: app.sessionStoreImpl,
    config,
    url: origin,
    logs: capture.logs,
    rawLogs: () => capture.raw.join(''),
    close: async () => {
      // A test is over: nothing is left to drain. (A connection a client opened and never used
      // would otherwise hold close() until Node's headers timeout.)
      const closing = app.close()
      app.server.closeAllConnections()
      await closing
      await stopOwn()
    }
  }
}
