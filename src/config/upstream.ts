// The proxy: where the gateway listens and how long it waits on clients, the app behind it and
// how long it waits on that, which proxies in front of it are trusted, and the upstream routes
// that sign the user out of the gateway too.
import { isIP } from 'node:net'
import { normalizePath } from '../policy/rules.js'
import { EnvReader, type Section } from './readers.js'

export interface UpstreamSettings {
  port: number
  host: string
  /** How long a SIGTERM waits for open requests (chat streams) before cutting them. */
  shutdownTimeoutSeconds: number
  /** A client must finish sending its request headers within this (slowloris). */
  headersTimeoutSeconds: number
  /** An idle keep-alive connection from a client is closed after this. */
  keepAliveTimeoutSeconds: number
  upstreamUrl: string
  upstreamHealthPath: string
  /** An upstream that sends no response headers within this many seconds gets a 504 (bodies and streams have no timeout). */
  upstreamHeadersTimeoutSeconds: number
  /** Past this many requests in flight to the upstream, new ones get a prompt 503 and /readyz says so. */
  upstreamMaxConcurrent: number
  trustedProxies: string[]
  /** Upstream routes whose 2xx answer ends the gateway session too (`POST /api/auth/logout`). */
  logoutPaths: Array<{ method: string, path: string }>
}

export function parseUpstream (env: NodeJS.ProcessEnv): Section<UpstreamSettings> {
  const r = new EnvReader(env)
  // --- the gateway's own listener
  const port = r.int('PORT', 3080, 0, 65535)
  const host = r.str('HOST') ?? '0.0.0.0'
  // Below Docker's default stop timeout (10 s) with room for the last second of closing, so
  // `docker stop` never ends in SIGKILL (compose's stop_grace_period stays above it).
  const shutdownTimeoutSeconds = r.int('SHUTDOWN_TIMEOUT_SECONDS', 8, 0, 3600)
  const headersTimeoutSeconds = r.int('HEADERS_TIMEOUT_SECONDS', 60, 1, 3600)
  // Above the 60 s idle timeout of common load balancers (AWS ALB, nginx): the gateway must not
  // close a connection the balancer is about to reuse, or that request fails with a 502.
  const keepAliveTimeoutSeconds = r.int('KEEP_ALIVE_TIMEOUT_SECONDS', 72, 1, 3600)

  // --- the app behind it
  const upstreamRaw = r.required('UPSTREAM_URL', 'set it to the app behind the gateway, e.g. http://api:3080 for LibreChat in docker compose')
  const upstream = r.url('UPSTREAM_URL', 'http://api:3080', upstreamRaw)
  if (upstream !== undefined && (upstream.search !== '' || upstream.hash !== '')) {
    r.problem('UPSTREAM_URL', 'UPSTREAM_URL must not have a query or fragment.')
  }
  const upstreamHealthPath = r.str('UPSTREAM_HEALTH_PATH') ?? '/health'
  if (!upstreamHealthPath.startsWith('/')) r.problem('UPSTREAM_HEALTH_PATH', 'UPSTREAM_HEALTH_PATH must be a path starting with / (LibreChat: /health).')
  const upstreamHeadersTimeoutSeconds = r.int('UPSTREAM_HEADERS_TIMEOUT_SECONDS', 300, 1, 3600)
  const upstreamMaxConcurrent = r.int('UPSTREAM_MAX_CONCURRENT', 8192, 1, 1_000_000)

  // --- the proxies in front of it
  const trustedProxies = r.list('TRUSTED_PROXIES')
  for (const cidr of trustedProxies) {
    const [addr, bits, extra] = cidr.split('/')
    const family = isIP(addr ?? '')
    const maxBits = family === 6 ? 128 : 32
    if (family === 0 || extra !== undefined || (bits !== undefined && (!/^\d+$/.test(bits) || Number(bits) > maxBits))) {
      r.problem('TRUSTED_PROXIES', `TRUSTED_PROXIES must be a comma-separated list of IP addresses or CIDRs such as 10.0.0.0/8 (bad entry "${cidr}").`)
    }
  }

  // --- LibreChat's own sign-out
  const logoutPaths: Array<{ method: string, path: string }> = []
  for (const entry of r.list('LOGOUT_PATHS', 'POST /api/auth/logout')) {
    const m = /^(GET|POST|PUT|PATCH|DELETE)\s+(\/\S*)$/i.exec(entry)
    if (m === null) r.problem('LOGOUT_PATHS', `LOGOUT_PATHS must be a comma-separated list of "METHOD /path" such as "POST /api/auth/logout" (bad entry "${entry}").`)
    // Matched against the normalized request path, so /API/auth/logout/ is the same route.
    else logoutPaths.push({ method: (m[1] as string).toUpperCase(), path: normalizePath(m[2] as string) ?? (m[2] as string) })
  }

  return r.section({
    port,
    host,
    shutdownTimeoutSeconds,
    headersTimeoutSeconds,
    keepAliveTimeoutSeconds,
    upstreamUrl: upstream !== undefined ? upstream.origin + upstream.pathname.replace(/\/+$/, '') : '',
    upstreamHealthPath,
    upstreamHeadersTimeoutSeconds,
    upstreamMaxConcurrent,
    trustedProxies,
    logoutPaths
  })
}
