// Where the Redis session store is: one server (REDIS_URL), a master found through Redis
// Sentinel (REDIS_SENTINELS + REDIS_SENTINEL_NAME), or a Redis Cluster (REDIS_CLUSTER_NODES);
// with ACL credentials and TLS in each form. Read by the session section.
import type { EnvReader } from './readers.js'

export interface HostPort { host: string, port: number }

export type RedisTarget =
  | { kind: 'url', url: string }
  | { kind: 'sentinel', sentinels: HostPort[], name: string, sentinelPassword: string | undefined }
  | { kind: 'cluster', nodes: HostPort[] }

export interface RedisSettings {
  target: RedisTarget
  /** An ACL user and its password (REDIS_USERNAME/REDIS_PASSWORD), or those of REDIS_URL. */
  username: string | undefined
  password: string | undefined
  /** TLS to every node (and every sentinel): rediss://, or REDIS_TLS=true. */
  tls: boolean
}

const EXAMPLE = { sentinels: 'sentinel-1:26379,sentinel-2:26379,sentinel-3:26379', cluster: 'redis-1:6379,redis-2:6379,redis-3:6379' }

/** `host:port` or `[v6]:port`, each entry; a problem naming the bad one. */
function hostPorts (r: EnvReader, name: string, example: string): HostPort[] {
  const out: HostPort[] = []
  for (const entry of r.list(name)) {
    const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(entry)
    const port = Number(m?.[2])
    if (m === null || port < 1 || port > 65535) {
      r.problem(name, `${name} must be a comma-separated list of host:port such as ${example} (bad entry "${entry}").`)
      continue
    }
    out.push({ host: (m[1] as string).replace(/^\[|\]$/g, ''), port })
  }
  return out
}

/**
 * The Redis settings when SESSION_STORE=redis (`needed`), else undefined. Every variable is read
 * either way (knownVariables).
 */
export function readRedis (r: EnvReader, needed: boolean): RedisSettings | undefined {
  const url = r.str('REDIS_URL')
  const sentinelsRaw = r.str('REDIS_SENTINELS')
  const sentinelName = r.str('REDIS_SENTINEL_NAME')
  const sentinelPassword = r.str('REDIS_SENTINEL_PASSWORD')
  const clusterRaw = r.str('REDIS_CLUSTER_NODES')
  const usernameVar = r.str('REDIS_USERNAME')
  const passwordVar = r.str('REDIS_PASSWORD')
  const tlsVar = r.bool('REDIS_TLS', false)
  if (!needed) return undefined

  const given = [url !== undefined && 'REDIS_URL', sentinelsRaw !== undefined && 'REDIS_SENTINELS', clusterRaw !== undefined && 'REDIS_CLUSTER_NODES'].filter(Boolean)
  if (given.length === 0) {
    r.problem('REDIS_URL', 'REDIS_URL is not set: SESSION_STORE=redis needs it, e.g. redis://redis:6379/0 (or REDIS_SENTINELS with REDIS_SENTINEL_NAME, or REDIS_CLUSTER_NODES).')
    return undefined
  }
  if (given.length > 1) {
    r.problem(given[1] as string, `${given.join(' and ')} are alternatives: set only one (REDIS_URL for one server, REDIS_SENTINELS for Sentinel, REDIS_CLUSTER_NODES for a Cluster).`)
    return undefined
  }
  if (sentinelsRaw === undefined) {
    if (sentinelName !== undefined) r.problem('REDIS_SENTINEL_NAME', 'REDIS_SENTINEL_NAME is set without REDIS_SENTINELS: set REDIS_SENTINELS to the sentinels (host:port list), or remove it.')
    if (sentinelPassword !== undefined) r.problem('REDIS_SENTINEL_PASSWORD', 'REDIS_SENTINEL_PASSWORD is set without REDIS_SENTINELS: set REDIS_SENTINELS to the sentinels (host:port list), or remove it.')
  }
  if (usernameVar !== undefined && passwordVar === undefined) r.problem('REDIS_USERNAME', 'REDIS_USERNAME is set without REDIS_PASSWORD: an ACL user signs in with its password; set REDIS_PASSWORD too.')

  let target: RedisTarget | undefined
  let username = usernameVar
  let password = passwordVar
  let tls = tlsVar
  if (url !== undefined) {
    let parsed: URL | undefined
    try { parsed = new URL(url) } catch {}
    if (parsed === undefined || !/^rediss?:$/.test(parsed.protocol)) {
      r.problem('REDIS_URL', 'REDIS_URL must start with redis:// or rediss:// (e.g. redis://redis:6379/0).')
      return undefined
    }
    if ((parsed.username !== '' || parsed.password !== '') && (usernameVar !== undefined || passwordVar !== undefined)) {
      r.problem('REDIS_PASSWORD', 'REDIS_URL carries credentials and REDIS_USERNAME/REDIS_PASSWORD are set too: keep them in one place.')
    }
    if (tlsVar && parsed.protocol === 'redis:') r.problem('REDIS_TLS', 'REDIS_TLS=true with a redis:// REDIS_URL: write the URL as rediss://… for TLS (REDIS_TLS is for Sentinel and Cluster).')
    tls = parsed.protocol === 'rediss:'
    username ??= parsed.username === '' ? undefined : decodeURIComponent(parsed.username)
    password ??= parsed.password === '' ? undefined : decodeURIComponent(parsed.password)
    target = { kind: 'url', url }
  } else if (sentinelsRaw !== undefined) {
    const sentinels = hostPorts(r, 'REDIS_SENTINELS', EXAMPLE.sentinels)
    if (sentinelName === undefined) r.problem('REDIS_SENTINEL_NAME', 'REDIS_SENTINEL_NAME is not set: REDIS_SENTINELS needs the name of the master the sentinels watch (their `sentinel monitor <name> …`, often mymaster).')
    if (sentinels.length === 0) r.problem('REDIS_SENTINELS', `REDIS_SENTINELS lists no sentinel: set it to host:port of each, e.g. ${EXAMPLE.sentinels}.`)
    target = { kind: 'sentinel', sentinels, name: sentinelName ?? '', sentinelPassword }
  } else {
    const nodes = hostPorts(r, 'REDIS_CLUSTER_NODES', EXAMPLE.cluster)
    if (nodes.length === 0) r.problem('REDIS_CLUSTER_NODES', `REDIS_CLUSTER_NODES lists no node: set it to host:port of some cluster nodes, e.g. ${EXAMPLE.cluster}.`)
    target = { kind: 'cluster', nodes }
  }
  return { target, username, password, tls }
}

/** Where the store is, for logs and the doctor: hosts and ports, never a password. */
export function describeRedis (s: RedisSettings): string {
  const list = (hs: HostPort[]): string => hs.map(h => `${h.host.includes(':') ? `[${h.host}]` : h.host}:${h.port}`).join(',')
  const t = s.target
  if (t.kind === 'url') {
    try {
      const u = new URL(t.url)
      u.username = ''
      u.password = ''
      return u.href
    } catch { return 'REDIS_URL' }
  }
  const tls = s.tls ? ' over TLS' : ''
  return t.kind === 'sentinel' ? `Sentinel master "${t.name}" via ${list(t.sentinels)}${tls}` : `Cluster via ${list(t.nodes)}${tls}`
}
