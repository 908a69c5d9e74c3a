// The Redis store through Redis Sentinel (Debian's redis-server and redis-sentinel: a master, a
// replica and three sentinels, started once for this file), with an ACL user and the sentinels'
// own password: the store suite, sessions shared and refreshed once by two gateways, sign-out,
// the doctor, and the master stopped under steady load.
import t from 'tap'
import { adminClient, REDIS_AUTH, startSentinels, type SentinelSetup } from '../../dev/redis-topologies.js'
import { doctorOn, failoverUnderLoad, sharedSessions, storeSuiteOn, type HaRedis } from '../helpers/ha-redis.js'

let setup: SentinelSetup
let env: Record<string, string>
t.before(async () => {
  setup = await startSentinels()
  env = {
    SESSION_STORE: 'redis',
    REDIS_SENTINELS: setup.sentinelList,
    REDIS_SENTINEL_NAME: setup.name,
    REDIS_SENTINEL_PASSWORD: REDIS_AUTH.sentinelPassword,
    REDIS_USERNAME: REDIS_AUTH.username,
    REDIS_PASSWORD: REDIS_AUTH.password
  }
})
t.teardown(async () => await setup?.stop())

t.test('the store suite through Sentinel', async t => { await storeSuiteOn(t, env) })

t.test('the doctor reaches the sentinels and the master', async t => {
  await doctorOn(t, env, { REDIS_SENTINEL_PASSWORD: 'not-the-sentinel-password' }, /refused REDIS_SENTINEL_PASSWORD.*set REDIS_SENTINEL_PASSWORD/)
  await doctorOn(t, env, { REDIS_SENTINEL_NAME: 'not-the-master' }, /watch no master named "not-the-master".*set REDIS_SENTINEL_NAME/)
  await doctorOn(t, env, { REDIS_PASSWORD: 'not-the-password' }, /refused the credentials.*set REDIS_PASSWORD/)
})

t.test('sign-in shared by two gateways, one refresh under concurrency, sign-out', async t => { await sharedSessions(t, env) })

t.test('the master stopped under steady load: 503 while no master serves, then served, no session lost', async t => {
  const ha: HaRedis = {
    env,
    replicated: async () => {
      const masterPort = await setup.currentMasterPort()
      const replica = masterPort === setup.master.port ? setup.replica : setup.master
      const m = adminClient(masterPort)
      const r = adminClient(replica.port)
      try {
        for (let i = 0; i < 200; i++) {
          const mo = Number(/master_repl_offset:(\d+)/.exec(await m.info('replication'))?.[1])
          const ro = Number(/slave_repl_offset:(\d+)/.exec(await r.info('replication'))?.[1])
          if (mo > 0 && ro >= mo) return
          await new Promise(resolve => setTimeout(resolve, 25))
        }
        throw new Error('the replica did not catch up')
      } finally { m.disconnect(); r.disconnect() }
    },
    stopMasterOf: async () => {
      const port = await setup.currentMasterPort()
      await (port === setup.master.port ? setup.master : setup.replica).stop()
      return port
    },
    failedOver: async (old) => {
      for (let i = 0; i < 400; i++) {
        if (await setup.currentMasterPort().catch(() => old) !== old) return
        await new Promise(resolve => setTimeout(resolve, 50))
      }
      throw new Error('no replica was promoted')
    }
  }
  await failoverUnderLoad(t, env, ha)
})
