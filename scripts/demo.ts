// `npm run demo`: the whole thing on this machine. A local Entra-shaped IdP (oidc-provider),
// a demo upstream that shows the identity it receives and streams server-sent events, and the
// gateway in front of it at http://localhost:3080. Nothing here is used in production.
import { buildApp } from '../src/app.js'
import { loadConfig, ConfigError } from '../src/config.js'
import { startIdp, DEMO_USERS, UNASSIGNED_USER } from '../dev/idp.js'
import { DEV_CLIENT_ID } from '../dev/client-id.js'
import { startUpstream } from '../dev/upstream.js'

const GATEWAY_PORT = Number(process.env.PORT ?? 3080)
const IDP_PORT = Number(process.env.DEMO_IDP_PORT ?? 3081)
const UPSTREAM_PORT = Number(process.env.DEMO_UPSTREAM_PORT ?? 3082)
// The chat stream paced so a person sees it arrive: 12 events over about five seconds.
const DEMO_SSE = { events: 12, intervalMs: 400 }

/** Starts one part; a port already taken says which setting moves it, in one line. */
async function onPort<T> (what: string, setting: string, port: number, start: () => Promise<T>): Promise<T> {
  try {
    return await start()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new Error(`port ${port} (the ${what}) is already in use: stop what listens there, or set ${setting} to another port, e.g. ${setting}=${port + 100} npm run demo`)
    }
    throw err
  }
}
const CLIENT_ID = DEV_CLIENT_ID
const CLIENT_SECRET = 'demo-client-secret-not-for-production'

async function main (): Promise<void> {
  const origin = `http://localhost:${GATEWAY_PORT}`
  const idp = await onPort('local IdP', 'DEMO_IDP_PORT', IDP_PORT, async () => await startIdp({
    host: 'localhost',
    port: IDP_PORT,
    clients: [{ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: [`${origin}/oauth/openid/callback`], post_logout_redirect_uris: [`${origin}/`, `${origin}/oauth2/signed_out`] }],
    users: [...DEMO_USERS, UNASSIGNED_USER]
  }))
  const upstream = await onPort('demo upstream', 'DEMO_UPSTREAM_PORT', UPSTREAM_PORT, async () => await startUpstream({ host: '127.0.0.1', port: UPSTREAM_PORT, sse: DEMO_SSE, gatewayUrl: origin }))

  let config
  try {
    config = loadConfig({
      OPENID_ISSUER: idp.issuer + '/',
      OPENID_CLIENT_ID: CLIENT_ID,
      OPENID_CLIENT_SECRET: CLIENT_SECRET,
      OPENID_SESSION_SECRET: 'demo-session-secret-change-me-0123456789abcdef',
      OPENID_REQUIRED_ROLE: 'ChatUser',
      OPENID_USE_END_SESSION_ENDPOINT: 'true',
      DOMAIN_SERVER: origin,
      UPSTREAM_URL: upstream.url,
      HOST: '127.0.0.1',
      PORT: String(GATEWAY_PORT),
      LOG_LEVEL: 'info',
      ...process.env
    })
  } catch (err) {
    if (err instanceof ConfigError) for (const line of err.problems) process.stderr.write(`demo: configuration error: ${line}\n`)
    process.exit(2)
  }
  const app = await buildApp(config)
  await onPort('gateway', 'PORT', config.port, async () => await app.listen({ port: config.port, host: config.host }))

  process.stdout.write(`
  entra-gateway demo
  ------------------
  Gateway      ${origin}   <- open this in a browser
  Local IdP    ${idp.issuer}
  Upstream     ${config.upstreamUrl}${config.upstreamUrl === upstream.url ? ' (the demo upstream; reachable only through the gateway in a real deployment)' : ` (from UPSTREAM_URL; the demo upstream at ${upstream.url} is unused)`}
  Ports        PORT=${GATEWAY_PORT} DEMO_IDP_PORT=${IDP_PORT} DEMO_UPSTREAM_PORT=${UPSTREAM_PORT} (set any of them to move it)

  Sign in as  alice / alice   allowed: has the app role ChatUser; the upstream page shows her identity
              bob   / bob     refused: signed in, but lacks the role ChatUser
              carol / carol   refused by the IdP: not assigned to the app (AADSTS50105, explained)
  Sign out at ${origin}/oauth2/sign_out
  Ctrl-C (or SIGTERM) stops everything.
\n`)

  const stop = (): void => {
    Promise.allSettled([app.close(), upstream.close(), idp.close()]).then(() => process.exit(0), () => process.exit(1))
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
}

main().catch((err: unknown) => {
  process.stderr.write(`demo: failed to start: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
