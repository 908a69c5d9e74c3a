// A real nginx (Debian's) on a free loopback port, started with a configuration of the caller's:
// the bench's ceiling row and the tests of the shipped nginx files (forward-auth, LibreChat's
// `client` in front of the gateway). Everything it writes stays in a temporary directory.
import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { freePort } from './ports.js'

export function findNginx (): string | undefined {
  for (const candidate of ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/local/nginx/sbin/nginx']) {
    if (existsSync(candidate)) return candidate
  }
  const which = spawnSync('sh', ['-c', 'command -v nginx'], { encoding: 'utf8' })
  const found = which.stdout.trim()
  return which.status === 0 && found !== '' ? found : undefined
}

export interface Nginx {
  url: string
  port: number
  version: string
  pid: number
  /** The temporary directory: nginx.conf, error.log, and files the caller put there. */
  dir: string
  /** The error log so far (for a failing test's message). */
  errorLog: () => string
  stop: () => Promise<void>
}

export interface NginxOptions {
  /**
   * What goes inside `http { }` after the temp paths: upstreams and server blocks. `{{port}}`
   * is replaced by the port nginx listens on, `{{dir}}` by its temporary directory.
   */
  http: (port: number, dir: string) => string
  /** Files to write into the temporary directory first (name → content), e.g. an included snippet. */
  files?: Record<string, string>
  /** Listen on this port instead of a free one (a caller that must name nginx's URL first, e.g. in DOMAIN_SERVER). */
  port?: number
  /** A path that answers 2xx once nginx is up (default `/`). */
  readyPath?: string
  /** Called with the child when it starts (the bench kills it on exit). */
  onChild?: (child: ReturnType<typeof spawn>) => void
}

/** nginx in the foreground, one worker, error log in its temp dir; resolves once it answers. */
export async function startNginx (opts: NginxOptions): Promise<Nginx> {
  const binary = findNginx()
  if (binary === undefined) throw new Error('nginx is not installed: run `npm run test:setup` or apt-get install nginx')
  const dir = mkdtempSync(path.join(os.tmpdir(), 'entra-gw-nginx-'))
  for (const [name, content] of Object.entries(opts.files ?? {})) writeFileSync(path.join(dir, name), content)
  const port = opts.port ?? await freePort()
  const conf = `# written by dev/nginx.ts
daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
${opts.http(port, dir)}
}
`
  const confPath = path.join(dir, 'nginx.conf')
  writeFileSync(confPath, conf)
  const version = spawnSync(binary, ['-v'], { encoding: 'utf8' }).stderr.trim().replace(/^nginx version: /, '')
  const errorLog = (): string => existsSync(path.join(dir, 'error.log')) ? readFileSync(path.join(dir, 'error.log'), 'utf8') : ''
  // -e: the startup error log too goes to the temp dir, not /var/log/nginx.
  const child = spawn(binary, ['-p', dir, '-e', path.join(dir, 'error.log'), '-c', confPath], { stdio: ['ignore', 'ignore', 'pipe'] })
  opts.onChild?.(child)
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => { stderr += d.toString() })
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit')
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000)
      await exited
      clearTimeout(timer)
    }
    rmSync(dir, { recursive: true, force: true })
  }
  const url = `http://127.0.0.1:${port}`
  // Polled: nginx has no readiness signal of its own. Bounded at 10 s.
  const deadline = Date.now() + 10_000
  for (;;) {
    if (child.exitCode !== null) {
      const log = errorLog()
      rmSync(dir, { recursive: true, force: true })
      throw new Error(`nginx exited with ${child.exitCode}: ${stderr}${log}`)
    }
    try {
      const res = await fetch(url + (opts.readyPath ?? '/'))
      await res.arrayBuffer()
      if (res.status < 500) break
    } catch {}
    if (Date.now() > deadline) { await stop(); throw new Error(`nginx did not answer within 10 s: ${stderr}${errorLog()}`) }
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  return { url, port, version, pid: child.pid as number, dir, errorLog, stop }
}
