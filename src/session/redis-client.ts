// One ioredis client for the configured Redis: a single server, the master that Sentinel names,
// or a Cluster. The store and the doctor build theirs here, so both reach Redis the same way.
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis'
import type { RedisSettings } from '../config.js'

export type RedisClient = Redis | Cluster

export interface ClientTiming {
  /** How long one command may take before Redis counts as not answering. */
  commandTimeoutMs: number
  connectTimeoutMs: number
  /** Delay before reconnect attempt `times`; null: never reconnect (a one-shot probe). */
  retry: (times: number) => number | null
  lazyConnect?: boolean
}

export function createRedisClient (s: RedisSettings, timing: ClientTiming): RedisClient {
  // Queueing commands while Redis is away would turn an outage into hanging requests.
  const common: RedisOptions = {
    lazyConnect: timing.lazyConnect ?? false,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    autoResendUnfulfilledCommands: false,
    connectTimeout: timing.connectTimeoutMs,
    commandTimeout: timing.commandTimeoutMs,
    ...(s.username !== undefined ? { username: s.username } : {}),
    ...(s.password !== undefined ? { password: s.password } : {})
  }
  const tls = s.tls ? { tls: {} } : {}
  const t = s.target
  if (t.kind === 'url') return new Redis(t.url, { ...common, retryStrategy: timing.retry })
  if (t.kind === 'sentinel') {
    return new Redis({
      ...common,
      ...tls,
      retryStrategy: timing.retry,
      sentinels: t.sentinels,
      name: t.name,
      ...(t.sentinelPassword !== undefined ? { sentinelPassword: t.sentinelPassword } : {}),
      // TLS to the sentinels as well as to the master (REDIS_TLS covers every hop).
      ...(s.tls ? { enableTLSForSentinelMode: true, sentinelTLS: {} } : {}),
      sentinelCommandTimeout: timing.commandTimeoutMs,
      sentinelRetryStrategy: timing.retry
      // No failoverDetector: its +switch-master handler disconnects even while a reconnect is
      // under way, and that reconnect then gives up for good (status "end"; seen with ioredis 6.0).
      // A stopped master closes the connection, and the reconnect asks the sentinels anew.
    })
  }
  const { enableOfflineQueue: _q, ...nodeOptions } = common
  const options: ClusterOptions = {
    lazyConnect: timing.lazyConnect ?? false,
    enableOfflineQueue: false,
    redisOptions: { ...nodeOptions, ...tls },
    // Writes go to masters only (a replica may lag behind a sign-out).
    scaleReads: 'master',
    clusterRetryStrategy: (times) => timing.retry(times) ?? undefined,
    slotsRefreshTimeout: timing.connectTimeoutMs,
    // During a failover a command is retried (fresh slots each time) for about
    // maxRedirections × these delays, then fails: a 503 rather than a wait without end.
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 200,
    retryDelayOnTryAgain: 200,
    maxRedirections: 8
  }
  return new Cluster(t.nodes, options)
}
