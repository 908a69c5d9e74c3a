// `npm run doctor` (and `node dist/doctor.js` in the image): reads the configuration as the
// gateway would (.env in the working directory, the environment winning), checks it against
// the world, prints one line per finding — `OK|WARN|ERROR <what> — <fix>` — and exits 1 when
// any finding is an ERROR. No secret value is ever printed.
import { config as loadDotenv } from 'dotenv'
import { formatFinding, hasErrors } from './doctor/findings.js'
import { runDoctor, secretValues } from './doctor/run.js'

async function main (): Promise<number> {
  loadDotenv({ quiet: true })
  const findings = await runDoctor(process.env)
  const secrets = secretValues(process.env)
  for (const finding of findings) process.stdout.write(formatFinding(finding, secrets) + '\n')
  return hasErrors(findings) ? 1 : 0
}

main().then(
  code => { process.exitCode = code },
  (err: unknown) => {
    const message = err instanceof Error ? err.message : String(err)
    process.stdout.write(formatFinding({ level: 'ERROR', what: `the doctor itself failed: ${message}`, fix: 'please report this' }, secretValues(process.env)) + '\n')
    process.exitCode = 2
  }
)
