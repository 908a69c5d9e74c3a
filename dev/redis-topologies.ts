// Real highly available Redis setups on loopback ports, for the tests: a master, a replica and
// three sentinels (Debian's redis-sentinel), and a Cluster of three masters with one replica
// each (`redis-server --cluster-enabled yes` joined by `redis-cli --cluster create`). Each runs
// with an ACL user for the gateway, a password for the default user (replication and the
// sentinels use it), and, for the sentinels, a password of their own.
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { once } from 'node:events'
import { randomInt } from 'node:crypto'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { Redis } from 'ioredis'
import { startRedis, startRedisOn, type RedisServer } from './redis-server.js'
import { isAddressInUse, withFreePort } from './ports.js'

const run = promisify(execFile)

/** The credentials every topology here is started with. */
export const REDIS_AUTH = {
  /** The default user's password: replication, the sentinels' monitoring and cluster setup use it. */
  adminPassword: 'redis-admin-password-0123456789',
  /** The gateway's own ACL user. */
  username: 'gateway',
  password: 'redis-gateway-password-0123456789',
  /** The sentinels' own password (REDIS_SENTINEL_PASSWORD). */
  sentinelPassword: 'redis-sentinel-password-0123456789'
}

const ACL_ARGS = [
  '--requirepass', REDIS_AUTH.adminPassword,
  '--masterauth', REDIS_AUTH.adminPassword,
  '--user', REDIS_AUTH.username, 'on', `>${REDIS_AUTH.password}`, '~*', '&*', '+@all'
]

/** Polls `check` (bounded) until it is true; what it waits for is named in the error. */
async function until (what: string, check: () => Promise<boolean>, tries = 200): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await check().catch(() => false)) return
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  throw new Error(`timed out waiting for ${what}`)
}

/** An admin connection to one server (the default user). */
export function adminClient (port: number, password = REDIS_AUTH.adminPassword, tls?: { ca: Buffer }): Redis {
  const c = new Redis({ host: '127.0.0.1', port, password, lazyConnect: false, maxRetriesPerRequest: 0, retryStrategy: () => null, ...(tls !== undefined ? { tls } : {}) })
  c.on('error', () => {})
  return c
}

async function withAdmin<T> (port: number, fn: (c: Redis) => Promise<T>, password?: string, tls?: { ca: Buffer }): Promise<T> {
  const c = adminClient(port, password, tls)
  try { return await fn(c) } finally { c.disconnect() }
}

// ---------------------------------------------------------------------------------------------
// Sentinel
// ---------------------------------------------------------------------------------------------

export interface SentinelSetup {
  name: string
  master: RedisServer
  replica: RedisServer
  sentinels: RedisServer[]
  /** REDIS_SENTINELS's value. */
  sentinelList: string
  /** The port of the server the sentinels call master now. */
  currentMasterPort: () => Promise<number>
  stop: () => Promise<void>
}

export async function startSentinels (name = 'gatewaymaster'): Promise<SentinelSetup> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'entra-gw-sentinel-'))
  const started: RedisServer[] = []
  const stop = async (): Promise<void> => {
    await Promise.all(started.map(async s => await s.stop()))
    await rm(dir, { recursive: true, force: true })
  }
  try {
    const master = await startRedis({ args: ACL_ARGS, cwd: dir })
    started.push(master)
    const replica = await startRedis({ args: [...ACL_ARGS, '--replicaof', '127.0.0.1', String(master.port)], cwd: dir })
    started.push(replica)
    await until('the replica to sync', async () => await withAdmin(replica.port, async c => /master_link_status:up/.test(await c.info('replication'))))
    const sentinels: RedisServer[] = []
    for (let i = 0; i < 3; i++) {
      const s = await sentinelOn(dir, i, name, master.port)
      started.push(s)
      sentinels.push(s)
    }
    // Ready when every sentinel knows the replica and the two other sentinels (a failover needs both).
    for (const s of sentinels) {
      await until('the sentinels to find each other', async () => await withAdmin(s.port, async c => {
        const replicas = await c.call('SENTINEL', 'REPLICAS', name) as unknown[]
        const others = await c.call('SENTINEL', 'SENTINELS', name) as unknown[]
        return replicas.length === 1 && others.length === 2
      }, REDIS_AUTH.sentinelPassword))
    }
    const currentMasterPort = async (): Promise<number> => await withAdmin(sentinels[0]?.port ?? 0, async c => {
      const addr = await c.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name) as string[]
      return Number(addr[1])
    }, REDIS_AUTH.sentinelPassword)
    return { name, master, replica, sentinels, sentinelList: sentinels.map(s => `127.0.0.1:${s.port}`).join(','), currentMasterPort, stop }
  } catch (err) {
    await stop()
    throw err
  }
}

async function sentinelOn (dir: string, i: number, name: string, masterPort: number): Promise<RedisServer> {
  // redis-sentinel rewrites its configuration file: one each, in the setup's own directory.
  const file = path.join(dir, `sentinel-${i}.conf`)
  await writeFile(file, [
    'bind 127.0.0.1',
    'sentinel resolve-hostnames no',
    `requirepass ${REDIS_AUTH.sentinelPassword}`,
    `sentinel sentinel-pass ${REDIS_AUTH.sentinelPassword}`,
    `sentinel monitor ${name} 127.0.0.1 ${masterPort} 2`,
    `sentinel auth-pass ${name} ${REDIS_AUTH.adminPassword}`,
    `sentinel down-after-milliseconds ${name} 1000`,
    `sentinel failover-timeout ${name} 10000`,
    `sentinel parallel-syncs ${name} 1`,
    ''
  ].join('\n'))
  return await withFreePort(async port => await startRedisOn(port, { program: 'redis-sentinel', args: [file], ready: '+monitor master' }))
}

// ---------------------------------------------------------------------------------------------
// Cluster
// ---------------------------------------------------------------------------------------------

export interface ClusterSetup {
  nodes: RedisServer[]
  /** REDIS_CLUSTER_NODES's value (every node; one reachable is enough to start). */
  nodeList: string
  /** The masters now, with the port of each one's replica. */
  masters: () => Promise<Array<{ port: number, replicaPort: number | undefined, slots: string }>>
  /** With TLS: the CA that signed the nodes' certificate. */
  caFile: string | undefined
  /** Resolves once every live node says the cluster is ok, three masters serve the slots and every live replica has synced. */
  healthy: () => Promise<void>
  stop: () => Promise<void>
}

/** Two ports free at once, p and its cluster bus port p + 10000, both below the ephemeral range. */
async function clusterPort (): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const port = randomInt(10_000, 22_700)
    const servers = [createServer(), createServer()]
    const bound = await Promise.all(servers.map(async (s, j) => await new Promise<boolean>(resolve => {
      s.once('error', () => resolve(false))
      s.listen(port + j * 10_000, '127.0.0.1', () => resolve(true))
    })))
    await Promise.all(servers.filter(s => s.listening).map(async s => { s.close(); await once(s, 'close') }))
    if (bound.every(Boolean)) return port
  }
  throw new Error('no free pair of loopback ports for a cluster node')
}

export async function startCluster (opts: { nodeTimeoutMs?: number, tls?: boolean } = {}): Promise<ClusterSetup> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'entra-gw-cluster-'))
  const nodes: RedisServer[] = []
  // With TLS every node speaks only TLS, to clients, to its replica and on the cluster bus.
  const tls = opts.tls === true ? await makeTlsFiles(dir) : undefined
  const tlsOptions = tls === undefined ? undefined : { ca: await readFile(tls.caFile) }
  const admin = async <T>(port: number, fn: (c: Redis) => Promise<T>): Promise<T> => await withAdmin(port, fn, undefined, tlsOptions)
  const stop = async (): Promise<void> => {
    await Promise.all(nodes.map(async s => await s.stop()))
    await rm(dir, { recursive: true, force: true })
  }
  try {
    for (let i = 0; i < 6; i++) {
      for (let attempt = 1; ; attempt++) {
        const port = await clusterPort()
        try {
          nodes.push(await startRedisOn(port, {
            cwd: dir,
            args: [
              ...ACL_ARGS, '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--cluster-node-timeout', String(opts.nodeTimeoutMs ?? 1000),
              ...(tls === undefined ? [] : ['--port', '0', '--tls-port', String(port), '--tls-cluster', 'yes', '--tls-replication', 'yes', ...tls.tlsArgs])
            ]
          }))
          break
        } catch (err) {
          if (attempt < 5 && isAddressInUse(err)) continue
          throw err
        }
      }
    }
    await run('redis-cli', [...(tls === undefined ? [] : ['--tls', '--cacert', tls.caFile]), '-a', REDIS_AUTH.adminPassword, '--no-auth-warning', '--cluster', 'create', ...nodes.map(n => `127.0.0.1:${n.port}`), '--cluster-replicas', '1', '--cluster-yes'], { timeout: 30_000 })
    const masters = async (): Promise<Array<{ port: number, replicaPort: number | undefined, slots: string }>> => {
      for (const n of nodes) {
        if (n.exited()) continue
        const text = await admin(n.port, async c => await c.call('CLUSTER', 'NODES') as string).catch(() => undefined)
        if (text === undefined) continue
        const lines = text.trim().split('\n').map(l => l.split(' '))
        const alive = lines.filter(f => !/fail/.test(f[2] ?? ''))
        return alive.filter(f => (f[2] ?? '').includes('master') && f.length > 8).map(f => {
          const port = Number((f[1] ?? '').split('@')[0]?.split(':')[1])
          const replica = alive.find(r => r[3] === f[0])
          return { port, replicaPort: replica === undefined ? undefined : Number((replica[1] ?? '').split('@')[0]?.split(':')[1]), slots: f.slice(8).join(' ') }
        })
      }
      throw new Error('no cluster node answers')
    }
    const healthy = async (): Promise<void> => {
      await until('the cluster to be ok on every live node', async () => {
        for (const n of nodes) {
          if (n.exited()) continue
          const info = await admin(n.port, async c => await c.call('CLUSTER', 'INFO') as string)
          if (!/cluster_state:ok/.test(info)) return false
          // A replica that has not synced yet could not take over from its master.
          const replication = await admin(n.port, async c => await c.info('replication'))
          if (/role:slave/.test(replication) && !/master_link_status:up/.test(replication)) return false
        }
        return (await masters()).length === 3
      }, 400)
    }
    await healthy()
    return { nodes, nodeList: nodes.map(n => `127.0.0.1:${n.port}`).join(','), masters, healthy, stop, caFile: tls?.caFile }
  } catch (err) {
    await stop()
    throw err
  }
}

// ---------------------------------------------------------------------------------------------
// TLS
// ---------------------------------------------------------------------------------------------

export interface TlsRedis {
  /** rediss:// with the gateway's ACL user and password. */
  url: string
  /** The CA that signed the server's certificate (for NODE_EXTRA_CA_CERTS). */
  caFile: string
  server: RedisServer
  stop: () => Promise<void>
}

/** redis-server speaking only TLS, its certificate for 127.0.0.1 signed by a CA made here with openssl. */
export async function startTlsRedis (): Promise<TlsRedis> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'entra-gw-redis-tls-'))
  try {
    const { caFile, tlsArgs } = await makeTlsFiles(dir)
    const server = await withFreePort(async port => await startRedisOn(port, {
      cwd: dir,
      // --port (set first by startRedisOn) is overridden: plain connections are refused.
      args: [...ACL_ARGS, '--port', '0', '--tls-port', String(port), ...tlsArgs]
    }))
    return {
      url: `rediss://${REDIS_AUTH.username}:${REDIS_AUTH.password}@127.0.0.1:${server.port}/0`,
      caFile,
      server,
      stop: async () => { await server.stop(); await rm(dir, { recursive: true, force: true }) }
    }
  } catch (err) {
    await rm(dir, { recursive: true, force: true })
    throw err
  }
}

/** A CA and a certificate for 127.0.0.1 signed by it (openssl), and the redis-server arguments that use them. */
export async function makeTlsFiles (dir: string): Promise<{ caFile: string, tlsArgs: string[] }> {
  const at = (f: string): string => path.join(dir, f)
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes']
  await run('openssl', ['req', '-x509', ...ec, '-keyout', at('ca.key'), '-out', at('ca.pem'), '-days', '2', '-subj', '/CN=entra-gateway test CA'])
  await run('openssl', ['req', ...ec, '-keyout', at('server.key'), '-out', at('server.csr'), '-subj', '/CN=127.0.0.1'])
  await writeFile(at('ext'), 'subjectAltName=IP:127.0.0.1\n')
  await run('openssl', ['x509', '-req', '-in', at('server.csr'), '-CA', at('ca.pem'), '-CAkey', at('ca.key'), '-CAcreateserial', '-out', at('server.pem'), '-days', '2', '-extfile', at('ext')])
  return { caFile: at('ca.pem'), tlsArgs: ['--tls-cert-file', at('server.pem'), '--tls-key-file', at('server.key'), '--tls-ca-cert-file', at('ca.pem'), '--tls-auth-clients', 'no'] }
}
