// The process entry point: configuration errors stop the start with one line each.
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'

async function run (env: Record<string, string>): Promise<{ code: number | null, stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'], cwd: process.cwd() })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  // 'close', not 'exit': by then all of its output has been read.
  const [code] = await once(child, 'close') as [number | null]
  return { code, stderr }
}

t.test('a misconfigured gateway exits non-zero naming each variable, printing no secret', async t => {
  const { code, stderr } = await run({ OPENID_CLIENT_SECRET: 'super-secret-value', OPENID_SESSION_SECRET: 'short', PORT: 'x' })
  t.equal(code, 2, 'exit code 2', { stderr })
  const lines = stderr.trim().split('\n')
  for (const name of ['OPENID_ISSUER', 'OPENID_CLIENT_ID', 'OPENID_SESSION_SECRET', 'DOMAIN_SERVER', 'UPSTREAM_URL', 'PORT']) {
    t.ok(lines.some(l => l.startsWith(`entra-gateway: configuration error: ${name}`)), name)
  }
  t.notMatch(stderr, /super-secret-value|short"/)
  t.notMatch(stderr, /\n\s+at /, 'no stack trace')
})
