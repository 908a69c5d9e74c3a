// The image, without Docker: the Dockerfile's COPY and RUN lines are replayed stage by stage in
// temporary directories (one per stage, standing in for its filesystem root), honouring
// .dockerignore, with independent stages running concurrently as BuildKit runs them. The final
// stage's CMD is then started the way docker compose would start it: the Dockerfile's ENV, then
// config/.env.example as the env_file, then the gateway's `environment:` from
// docker-compose.yml. Only what must point at this machine is replaced (listed in `replaced`
// below): the Entra-shaped test IdP for Entra, the LibreChat stand-in for `api`, a real
// redis-server for `redis`, and free loopback ports. It must answer /healthz and /readyz,
// sign a user in with its sessions in Redis, and stop cleanly on SIGTERM.
import t from 'tap'
import { cp, mkdir, mkdtemp, readdir, rm, chmod, stat, symlink, unlink } from 'node:fs/promises'
import { existsSync, readFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parse as parseDotenv } from 'dotenv'
import { startIdp, DEMO_USERS } from '../../dev/idp.js'
import { DEV_CLIENT_ID } from '../../dev/client-id.js'
import { startUpstream } from '../../dev/upstream.js'
import { startRedis, withFreePort } from '../helpers/redis.js'
import { startProcess, type Proc } from '../helpers/process.js'
import { Browser, signIn } from '../helpers/browser.js'
import {
  ROOT, read, parseDockerfile, dockerIgnore, parseCopy, parseEnv, execForm, loadCompose,
  environmentOf, envFilesOf, interpolate, type Stage
} from '../helpers/deploy.js'

const CLIENT_ID = DEV_CLIENT_ID
const CLIENT_SECRET = 'artifact-test-secret-value-0123456789'
const SESSION_SECRET = 'artifact-test-session-secret-0123456789abcdef'
const BOUND_MS = 45_000
// Two npm installs and a TypeScript build run here: minutes, not seconds, on a busy machine
// (tap's default for a file is 120 s).
t.setTimeout(600_000)

/** PATH as the official node image sets it (the image's ENV). */
const NODE_IMAGE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

/**
 * A build step's environment: nothing inherited from tap (NODE_OPTIONS loaders etc.), only
 * PATH and this machine's network settings (a build gets those as build args).
 */
function baseEnv (): Record<string, string> {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin' }
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && /^(https?_proxy|no_proxy|NODE_EXTRA_CA_CERTS|SSL_CERT_FILE)$/i.test(k)) env[k] = v
  }
  return env
}

function hostNpmCache (): string {
  return process.env.npm_config_cache ?? path.join(os.homedir(), '.npm')
}

interface Mount { type: string, target: string, raw: string }

/** `RUN --mount=type=cache,target=/root/.npm cmd` → the mounts and the command. */
function parseRun (args: string): { mounts: Mount[], command: string } {
  const mounts: Mount[] = []
  let rest = args
  for (;;) {
    const m = /^--([a-z-]+)=(\S+)\s+/.exec(rest)
    if (m === null) break
    if (m[1] !== 'mount') throw new Error(`RUN --${m[1] as string} is not replayed by this test`)
    const kv = Object.fromEntries((m[2] as string).split(',').map(p => p.split('=') as [string, string]))
    mounts.push({ type: kv.type ?? 'bind', target: kv.target ?? kv.dst ?? kv.destination ?? '', raw: m[2] as string })
    rest = rest.slice(m[0].length)
  }
  return { mounts, command: rest }
}

async function run (cmd: string[], cwd: string, env: Record<string, string>, label: string): Promise<void> {
  const proc = startProcess(cmd, { cwd, env })
  const exit = await proc.exited
  if (exit.code !== 0) throw proc.failure(label)
}

/** Copies src to dest, leaving out what .dockerignore excludes (rel = path in the context). */
async function copyFromContext (rel: string, dest: string, ignored: (p: string) => boolean): Promise<void> {
  const from = path.join(ROOT, rel)
  await cp(from, dest, {
    recursive: true,
    filter: (source) => {
      const r = path.relative(ROOT, source).split(path.sep).join('/')
      return r === '' || !ignored(r)
    }
  })
}

interface Built { root: string, workdir: string, env: Record<string, string>, user: string | undefined, cmd: string[] | undefined }

/**
 * Replays every stage; returns them by name and index. A COPY --from waits for that stage,
 * other stages run side by side.
 */
function replay (stages: Stage[], ignored: (p: string) => boolean, tmp: string, log: string[]): Array<Promise<Built>> {
  const done: Array<Promise<Built>> = []
  const byName = (ref: string): Promise<Built> => {
    const s = stages.find(x => x.name === ref.toLowerCase()) ?? (/^\d+$/.test(ref) ? stages[Number(ref)] : undefined)
    if (s === undefined) throw new Error(`COPY --from=${ref}: not a stage of this Dockerfile (images are not replayed here)`)
    return done[s.index] as Promise<Built>
  }
  for (const stage of stages) {
    done.push((async () => {
      const root = path.join(tmp, `stage-${stage.index}-${stage.name ?? 'unnamed'}`)
      await mkdir(root, { recursive: true })
      const b: Built = { root, workdir: '/', env: {}, user: undefined, cmd: undefined }
      const inRoot = (p: string): string => path.join(root, path.posix.resolve(b.workdir, p))
      for (const ins of stage.instructions) {
        switch (ins.keyword) {
          case 'WORKDIR':
            b.workdir = path.posix.resolve(b.workdir, ins.args)
            await mkdir(inRoot('.'), { recursive: true })
            break
          case 'ENV':
            Object.assign(b.env, parseEnv(ins.args))
            break
          case 'USER':
            b.user = ins.args
            break
          case 'CMD':
            b.cmd = execForm(ins.args)
            if (b.cmd === undefined) throw new Error(`line ${ins.line}: CMD in shell form (use the exec form so node gets SIGTERM)`)
            break
          case 'COPY': {
            const c = parseCopy(ins.args)
            const destIsDir = c.dest.endsWith('/') || c.sources.length > 1
            const dest = inRoot(c.dest)
            const source = c.from !== undefined ? await byName(c.from) : undefined
            for (const src of c.sources) {
              if (/[*?[]/.test(src)) throw new Error(`line ${ins.line}: wildcard COPY sources are not replayed here: ${src}`)
              const from = source !== undefined ? path.join(source.root, path.posix.resolve('/', src)) : path.join(ROOT, src)
              if (source === undefined && ignored(path.posix.normalize(src))) throw new Error(`line ${ins.line}: ${src} is excluded by .dockerignore, so docker build would fail`)
              if (!existsSync(from)) throw new Error(`line ${ins.line}: COPY source ${src} does not exist`)
              const isDir = (await stat(from)).isDirectory()
              // Docker copies a directory's contents into dest, and a file into dest/ or as dest.
              const target = isDir || !destIsDir ? dest : path.join(dest, path.basename(src))
              await mkdir(isDir ? target : path.dirname(target), { recursive: true })
              if (source !== undefined) await cp(from, target, { recursive: true })
              else await copyFromContext(src, target, ignored)
            }
            break
          }
          case 'RUN': {
            const { mounts, command } = parseRun(ins.args)
            // A cache mount is a directory shared by builds and absent from the layer: here, a
            // symlink at its target to this machine's cache for the duration of the command.
            const links: string[] = []
            for (const m of mounts) {
              if (m.type !== 'cache' || m.target !== '/root/.npm') throw new Error(`line ${ins.line}: RUN --mount=${m.raw} is not replayed by this test`)
              const link = path.join(root, m.target)
              await mkdir(path.dirname(link), { recursive: true })
              await symlink(hostNpmCache(), link)
              links.push(link)
            }
            const cmd = execForm(command) ?? ['/bin/sh', '-c', command]
            // The build runs as root, whose home is /root. npm prefers the (mounted) cache; the
            // registry is reachable, just slower.
            const env = { ...baseEnv(), HOME: path.join(root, 'root'), ...b.env, npm_config_prefer_offline: 'true', npm_config_update_notifier: 'false' }
            const t0 = Date.now()
            try {
              await run(cmd, inRoot('.'), env, `stage ${stage.name ?? stage.index} line ${ins.line} RUN ${ins.args}`)
              log.push(`${stage.name ?? stage.index}: RUN ${command} (${((Date.now() - t0) / 1000).toFixed(1)} s)`)
            } finally {
              for (const link of links) await unlink(link)
            }
            break
          }
          case 'EXPOSE': case 'HEALTHCHECK': case 'LABEL': case 'ARG':
            break
          default:
            throw new Error(`line ${ins.line}: ${ins.keyword} is not replayed by this test`)
        }
      }
      return b
    })())
  }
  return done
}

/** Files and directories named .env* outside node_modules. */
async function envFiles (dir: string, rel = ''): Promise<string[]> {
  const found: string[] = []
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules') continue
    const r = rel === '' ? entry.name : `${rel}/${entry.name}`
    if (/^\.env($|\.)/.test(entry.name)) found.push(r)
    if (entry.isDirectory()) found.push(...await envFiles(path.join(dir, entry.name), r))
  }
  return found
}

async function poll (what: string, fn: () => Promise<boolean>, deadlineMs: number, proc: Proc): Promise<void> {
  const until = Date.now() + deadlineMs
  for (;;) {
    if (proc.child.exitCode !== null || proc.child.signalCode !== null) {
      await proc.exited // all of its output is read
      throw proc.failure(`the gateway exited while waiting for ${what}`)
    }
    if (await fn().catch(() => false)) return
    if (Date.now() > until) throw proc.failure(`${what}: no success within ${deadlineMs} ms`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

t.test('the Dockerfile builds an artifact that starts with the compose environment', async t => {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'entra-gw-image-'))
  t.teardown(() => rm(tmp, { recursive: true, force: true }))

  const stages = parseDockerfile(read('Dockerfile'))
  const ignored = dockerIgnore(read('.dockerignore'))
  const started = Date.now()
  const log: string[] = []
  const results = replay(stages, ignored, tmp, log)
  // Every stage settles before the temp dir goes, even when one fails.
  const settled = await Promise.allSettled(results)
  const failure = settled.find(r => r.status === 'rejected')
  if (failure !== undefined) throw (failure as PromiseRejectedResult).reason
  const image = (settled[settled.length - 1] as PromiseFulfilledResult<Built>).value
  t.comment(`build and install replayed in ${((Date.now() - started) / 1000).toFixed(1)} s (stages side by side):\n${log.join('\n')}`)

  const app = path.join(image.root, image.workdir)
  t.ok(existsSync(path.join(app, 'dist/server.js')), 'dist/server.js in the final stage')
  t.notOk(existsSync(path.join(app, 'src')), 'no TypeScript sources in the final stage')
  t.notOk(existsSync(path.join(app, 'node_modules/typescript')), 'no dev dependencies (typescript) in the final stage')
  t.notOk(existsSync(path.join(app, 'node_modules/tap')), 'no dev dependencies (tap) in the final stage')
  t.ok(existsSync(path.join(app, 'node_modules/fastify')), 'production dependencies installed')
  t.same(await envFiles(image.root), [], 'no .env file anywhere in the final stage')

  // --- what the compose file runs it with
  const compose = loadCompose()
  const gateway = compose.services.gateway
  if (gateway === undefined) throw new Error('docker-compose.yml has no gateway service')
  t.same(envFilesOf(gateway), ['.env'], 'env_file: .env (the example stands in for it)')
  const envFile = parseDotenv(read('config/.env.example'))
  const composeEnv = Object.fromEntries(Object.entries(environmentOf(gateway)).map(([k, v]) => [k, interpolate(v, envFile)]))

  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const upstream = await startUpstream()
  t.teardown(() => upstream.close())
  const merged = { ...envFile, ...composeEnv }
  const callback = merged.OPENID_CALLBACK_URL ?? '/oauth/openid/callback'
  // Each replacement keeps the compose file's meaning: same service, this machine's address.
  const upstreamUrl = new URL(composeEnv.UPSTREAM_URL ?? '')
  t.equal(upstreamUrl.hostname, 'api', 'UPSTREAM_URL points at the api service')
  const redisUrl = new URL(composeEnv.REDIS_URL ?? '')
  t.equal(redisUrl.hostname, 'redis', 'REDIS_URL points at the redis service')

  // USER node: the files stay root's, the process is not root. Here: run as nobody when we can.
  const asUser: { uid?: number, gid?: number } = {}
  if (process.getuid?.() === 0 && image.user !== undefined && image.user !== 'root') {
    for (let dir = app; dir.startsWith(tmp); dir = path.dirname(dir)) await chmod(dir, 0o755)
    asUser.uid = 65534
    asUser.gid = 65534
  }
  t.comment(asUser.uid !== undefined ? 'the gateway runs as nobody (uid 65534) over root-owned files' : 'the gateway runs as this (non-root) user')
  const cmd = image.cmd ?? []
  t.equal(cmd[0], 'node', 'CMD runs node')

  // The gateway is told its port (PORT, DOMAIN_SERVER, the IdP's redirect URI) before it binds
  // it; should another process take the port meanwhile, it says EADDRINUSE and all of it starts
  // again on another port.
  const running = await withFreePort(async port => {
    const origin = `http://127.0.0.1:${port}`
    const idp = await startIdp({
      clients: [{ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: [origin + callback], post_logout_redirect_uris: [origin + '/', origin + '/oauth2/signed_out'] }],
      users: DEMO_USERS
    })
    const replaced: Record<string, string> = {
      UPSTREAM_URL: upstream.url + upstreamUrl.pathname.replace(/\/$/, ''),
      REDIS_URL: `redis://127.0.0.1:${redis.port}${redisUrl.pathname}`,
      HOST: '127.0.0.1',
      PORT: String(port),
      DOMAIN_SERVER: origin,
      DOMAIN_CLIENT: origin + '/',
      OPENID_ISSUER: idp.issuer + '/', // the guide's form, trailing slash
      OPENID_CLIENT_ID: CLIENT_ID,
      OPENID_CLIENT_SECRET: CLIENT_SECRET,
      OPENID_SESSION_SECRET: SESSION_SECRET
    }
    // A container starts with the image's environment only: its ENV (the base image's PATH),
    // the env_file, the service's environment:, and nothing of the test runner's.
    const env: Record<string, string> = { PATH: NODE_IMAGE_PATH, HOME: app, ...image.env, ...envFile, ...composeEnv, ...replaced }
    const gw = startProcess([process.execPath, ...cmd.slice(1)], { cwd: app, env, ...asUser })
    try {
      await poll('/healthz', async () => (await fetch(`${origin}/healthz`)).status === 200, BOUND_MS, gw)
    } catch (err) {
      await gw.kill()
      await idp.close()
      throw err
    }
    return { gw, idp, origin, env }
  })
  const { gw, idp, origin, env } = running
  t.teardown(() => idp.close())
  t.teardown(() => gw.kill())
  t.pass('/healthz 200')
  t.equal(env.SESSION_STORE, 'redis', "compose's SESSION_STORE=redis is what runs")
  t.equal(env.NODE_ENV, 'production', "the Dockerfile's NODE_ENV=production is what runs")
  const environ = `/proc/${String(gw.child.pid)}/environ`
  if (existsSync(environ)) {
    const names = readFileSync(environ, 'utf8').split('\0').filter(Boolean).map(kv => kv.slice(0, kv.indexOf('=')))
    t.same(names.filter(n => !(n in env)), [], 'the process has no variable it was not given (no NODE_OPTIONS, nothing of tap\'s)')
  }

  try {
    let last = ''
    await poll('/readyz', async () => {
      const res = await fetch(`${origin}/readyz`)
      last = await res.text()
      return res.status === 200
    }, BOUND_MS, gw)
    t.pass('/readyz 200')
    t.match(JSON.parse(last), { status: 'ready', checks: { idp: 'ok', session_store: 'ok', upstream: 'ok' } })

    // A real sign-in through the artifact, its session kept in Redis.
    const browser = new Browser()
    const { response } = await signIn(browser, `${origin}/c/new`, 'alice', 'alice')
    t.equal(response.status, 200, 'signed in and proxied to the LibreChat stand-in')
    await response.body?.cancel()
    const seen = upstream.requests.find(r => r.url === '/c/new')
    t.ok(seen?.headers['x-forwarded-user'], 'the upstream got the identity')
    const { Redis } = await import('ioredis')
    const client = new Redis(redis.url)
    t.teardown(() => client.disconnect())
    t.ok((await client.dbsize()) > 0, 'the session lives in Redis (SESSION_STORE=redis from compose)')
  } catch (err) {
    t.comment(`gateway output:\n${gw.output().slice(-4000)}`)
    throw err
  }

  // SIGTERM (docker stop): a clean exit. The bound only keeps a hung process from outliving the test.
  gw.child.kill('SIGTERM')
  const timer = setTimeout(() => gw.child.kill('SIGKILL'), BOUND_MS)
  const exit = await gw.exited
  clearTimeout(timer)
  t.same(exit, { code: 0, signal: null }, 'exit code 0 after SIGTERM, not killed', { output: gw.output() })
  t.notMatch(gw.output(), /configuration error|failed to start/, 'no start-up error')
  t.notMatch(gw.output(), new RegExp(`${CLIENT_SECRET}|${SESSION_SECRET}`), 'no secret in its output')
  t.comment(`total ${((Date.now() - started) / 1000).toFixed(1)} s`)
})
