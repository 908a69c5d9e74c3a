// How many processes serve: WORKERS gateways on one listening socket (node:cluster), supervised
// by a primary that serves nothing itself.
import { availableParallelism } from 'node:os'
import { EnvReader, type Section } from './readers.js'
import type { SessionSettings } from './session.js'

export interface ProcessSettings {
  /** Worker processes; 1 runs the gateway in this process, without a primary. */
  workers: number
}

export function parseProcess (env: NodeJS.ProcessEnv, session: Pick<SessionSettings, 'sessionStore'>): Section<ProcessSettings> {
  const r = new EnvReader(env)
  const raw = r.str('WORKERS')
  // auto: the CPUs this process may use (os.availableParallelism honours affinity and cgroup limits).
  const auto = raw?.toLowerCase() === 'auto'
  let workers = 1
  if (auto) workers = availableParallelism()
  else if (raw !== undefined) {
    if (/^\d+$/.test(raw) && Number(raw) >= 1 && Number(raw) <= 1024) workers = Number(raw)
    else r.problem('WORKERS', `WORKERS must be a whole number from 1 to 1024, or auto for one per CPU (got "${raw}").`)
  }
  if ((auto || workers > 1) && session.sessionStore === 'memory') {
    r.problem('WORKERS', `WORKERS=${raw ?? ''} needs SESSION_STORE=redis: with SESSION_STORE=memory each worker would keep its own sessions and sign users out at random (set WORKERS=1, or SESSION_STORE=redis with REDIS_URL).`)
  }
  return r.section({ workers })
}
