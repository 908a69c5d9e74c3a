// The tests' own harness: ports for servers that must be told theirs before they bind it
// (dev/ports.ts). Another process may take such a port in between; the two defences
// are checked here: ports are drawn where the kernel never hands one out by itself, and a port
// found taken at bind time is retried on another.
import t from 'tap'
import { createServer, type Server } from 'node:net'
import { once } from 'node:events'
import { existsSync, readFileSync } from 'node:fs'
import { freePort, withFreePort, isAddressInUse, startRedisOn } from '../helpers/redis.js'

const RANGE = '/proc/sys/net/ipv4/ip_local_port_range'

async function occupy (port: number): Promise<Server> {
  const srv = createServer()
  srv.listen(port, '127.0.0.1')
  await once(srv, 'listening')
  return srv
}

t.test('free ports lie below the kernel\'s ephemeral range, where listen(0) and outgoing connections never land', async t => {
  const first = existsSync(RANGE) ? Number(readFileSync(RANGE, 'utf8').trim().split(/\s+/)[0]) : 32768
  for (let i = 0; i < 20; i++) {
    const port = await freePort()
    t.ok(port >= 10_000 && port < first, `${port} in [10000, ${first})`)
    const srv = await occupy(port)
    srv.close()
  }
})

t.test('a port taken between the choice and the bind is retried on another', async t => {
  const tried: number[] = []
  const result = await withFreePort(async port => {
    tried.push(port)
    if (tried.length === 1) {
      const squatter = await occupy(port)
      t.teardown(() => { squatter.close() })
    }
    const srv = createServer()
    await new Promise<void>((resolve, reject) => { srv.once('error', reject); srv.listen(port, '127.0.0.1', resolve) })
    t.teardown(() => { srv.close() })
    return port
  })
  t.equal(tried.length, 2, 'started twice')
  t.not(tried[1], tried[0], 'on another port')
  t.equal(result, tried[1])
})

t.test('any other failure is not retried', async t => {
  let calls = 0
  await t.rejects(withFreePort(async () => { calls++; throw new Error('boom') }), /boom/)
  t.equal(calls, 1)
})

t.test('redis-server on a taken port fails in a way that is retried', async t => {
  const port = await freePort()
  const squatter = await occupy(port)
  t.teardown(() => { squatter.close() })
  const err = await startRedisOn(port).then(() => undefined, (e: unknown) => e)
  t.ok(err instanceof Error, 'it does not start')
  t.ok(isAddressInUse(err), 'recognised as a taken port', { error: String(err) })
})
