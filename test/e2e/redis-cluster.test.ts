// The Redis store on a Redis Cluster (Debian's redis-server: three masters with a replica each,
// joined by `redis-cli --cluster create`, started once for this file; cluster-node-timeout 1 s),
// with an ACL user: the store suite, sessions shared and refreshed once by two gateways,
// sign-out, the doctor, the master holding a session stopped under steady load; and a second
// Cluster speaking only TLS.
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import { adminClient, REDIS_AUTH, startCluster, type ClusterSetup } from '../../dev/redis-topologies.js'
import { doctorOn, failoverUnderLoad, sharedSessions, storeSuiteOn, type HaRedis } from '../helpers/ha-redis.js'
import { flattenReport } from '../helpers/doctor.js'

let setup: ClusterSetup
let env: Record<string, string>
t.before(async () => {
  setup = await startCluster({ nodeTimeoutMs: 1000 })
  env = { SESSION_STORE: 'redis', REDIS_CLUSTER_NODES: setup.nodeList, REDIS_USERNAME: REDIS_AUTH.username, REDIS_PASSWORD: REDIS_AUTH.password }
})
t.teardown(async () => await setup?.stop())

t.test('the store suite on the Cluster', async t => { await storeSuiteOn(t, env) })

t.test('the doctor reaches the cluster nodes', async t => {
  await doctorOn(t, env, { REDIS_PASSWORD: 'not-the-password' }, /refused the credentials.*REDIS_PASSWORD/)
})

t.test('sign-in shared by two gateways, one refresh under concurrency, sign-out', async t => { await sharedSessions(t, env) })

t.test('a master stopped under steady load: 503 while its slots have no master, then served, no session lost', async t => {
  const ha: HaRedis = {
    env,
    replicated: async () => {
      for (const m of await setup.masters()) {
        const master = adminClient(m.port)
        const replica = adminClient(m.replicaPort ?? 0)
        try {
          let caughtUp = false
          for (let i = 0; i < 200 && !caughtUp; i++) {
            const mo = Number(/master_repl_offset:(\d+)/.exec(await master.info('replication'))?.[1])
            const ro = Number(/slave_repl_offset:(\d+)/.exec(await replica.info('replication'))?.[1])
            caughtUp = mo > 0 && ro >= mo
            if (!caughtUp) await new Promise(resolve => setTimeout(resolve, 25))
          }
          if (!caughtUp) throw new Error(`the replica of ${m.port} did not catch up`)
        } finally { master.disconnect(); replica.disconnect() }
      }
    },
    stopMasterOf: async (key) => {
      const any = adminClient((await setup.masters())[0]?.port ?? 0)
      const slot = Number(await any.call('CLUSTER', 'KEYSLOT', key))
      any.disconnect()
      const holder = (await setup.masters()).find(m => m.slots.split(' ').some(range => {
        const [from, to] = range.split('-').map(Number)
        return slot >= (from ?? -1) && slot <= (to ?? from ?? -1)
      }))
      if (holder === undefined || holder.replicaPort === undefined) throw new Error(`no master with a replica holds slot ${slot}`)
      await setup.nodes.find(n => n.port === holder.port)?.stop()
      return holder.port
    },
    failedOver: async () => { await setup.healthy() }
  }
  await failoverUnderLoad(t, env, ha)
})

t.test('a Cluster speaking only TLS: reached with REDIS_TLS=true, its CA given through NODE_EXTRA_CA_CERTS', async t => {
  const secure = await startCluster({ tls: true })
  t.teardown(() => secure.stop())
  const env = { SESSION_STORE: 'redis', REDIS_CLUSTER_NODES: secure.nodeList, REDIS_USERNAME: REDIS_AUTH.username, REDIS_PASSWORD: REDIS_AUTH.password }
  // The doctor builds its client where the store does (session/redis-client.ts), in a process of
  // its own, so the CA can be given the way an operator gives it.
  const withTls = await doctorCli({ ...env, REDIS_TLS: 'true', NODE_EXTRA_CA_CERTS: secure.caFile ?? '' })
  t.match(withTls, /^OK Redis at Cluster via [^\n]* over TLS answers PING/m, 'reached over TLS as the ACL user')
  t.notMatch(withTls, /cluster node .* does not answer/, 'every node too')
  const plain = await doctorCli(env)
  t.match(plain, /^ERROR Redis at Cluster via [^\n]* is unreachable/m, 'without REDIS_TLS it is not')
})

async function doctorCli (env: Record<string, string>): Promise<string> {
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), fileURLToPath(new URL('../../src/doctor.ts', import.meta.url))], {
    cwd: os.tmpdir(),
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  await once(child, 'close')
  return flattenReport(out)
}
