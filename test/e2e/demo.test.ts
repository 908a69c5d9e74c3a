// `npm run demo` as a person runs it: through npm, stopped by a signal sent to npm's own process
// (what a terminal's Ctrl-C, `kill`, or a process manager sends), and told which setting moves a
// port that is already taken.
import t, { type Test } from 'tap'
import { createServer, connect } from 'node:net'
import { once } from 'node:events'
import { startProcess, listeningOrigin, type Proc } from '../helpers/process.js'
import { REPO_ROOT } from '../helpers/chromium.js'
import { freePort } from '../../dev/ports.js'

const baseEnv = (): Record<string, string> => ({ PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root' })

async function ports (): Promise<{ PORT: string, DEMO_IDP_PORT: string, DEMO_UPSTREAM_PORT: string }> {
  return { PORT: String(await freePort()), DEMO_IDP_PORT: String(await freePort()), DEMO_UPSTREAM_PORT: String(await freePort()) }
}

/** Whether something accepts connections on the loopback port. */
async function listening (port: number): Promise<boolean> {
  const socket = connect(port, '127.0.0.1')
  try {
    await once(socket, 'connect')
    return true
  } catch {
    return false
  } finally {
    socket.destroy()
  }
}

async function startDemo (t: Test, env: Record<string, string>): Promise<Proc> {
  const proc = startProcess(['npm', 'run', 'demo'], { cwd: REPO_ROOT, env: { ...baseEnv(), ...env } })
  t.teardown(async () => { await proc.kill() })
  return proc
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  t.test(`${signal} to npm's process stops the whole demo`, async t => {
    const p = await ports()
    const proc = await startDemo(t, p)
    const origin = await listeningOrigin(proc)
    t.equal(new URL(origin).port, p.PORT, 'the gateway listens on PORT')
    await proc.waitForText('stops everything')
    t.match(proc.output(), `Upstream     http://127.0.0.1:${p.DEMO_UPSTREAM_PORT} (the demo upstream`, 'the banner names the upstream actually used')
    for (const port of Object.values(p)) t.ok(await listening(Number(port)), `port ${port} is served`)

    proc.child.kill(signal)
    const exit = await proc.exited
    t.ok(exit.code === 0 || exit.signal === signal || exit.code === 128 + (signal === 'SIGTERM' ? 15 : 2), `npm ended (${exit.signal ?? String(exit.code)})`)
    // Had only npm gone, the demo's own process would still hold these ports.
    for (const [name, port] of Object.entries(p)) t.notOk(await listening(Number(port)), `${name} ${port} is free again: nothing was left behind`)
  })
}

t.test('a taken port names the setting that moves it', async t => {
  const p = await ports()
  const squatter = createServer()
  squatter.listen(Number(p.DEMO_IDP_PORT), '127.0.0.1')
  await once(squatter, 'listening')
  t.teardown(() => { squatter.close() })

  const proc = await startDemo(t, p)
  const exit = await proc.exited
  t.not(exit.code, 0, 'the demo fails')
  t.match(proc.output(), new RegExp(`port ${p.DEMO_IDP_PORT} \\(the local IdP\\) is already in use: .*set DEMO_IDP_PORT to another port`), 'one line naming DEMO_IDP_PORT')
  t.notMatch(proc.output(), /\n\s+at /, 'no stack trace')
})
