// `npm run doctor` (and `node dist/doctor.js` in the image): reads the configuration as the
// gateway would (.env in the working directory, the environment winning), checks it against
// the world, prints each finding (`OK|WARN|ERROR <what>`, its fix below, wrapped to 80 columns)
// and a summary line, and exits 1 when any finding is an ERROR. No secret value is ever printed.
import { config as loadDotenv } from 'dotenv'
import { formatFinding, hasErrors, renderReport } from './doctor/findings.js'
import { runDoctor, secretValues } from './doctor/run.js'

async function main (): Promise<number> {
  loadDotenv({ quiet: true })
  const findings = await runDoctor(process.env)
  const secrets = secretValues(process.env)
  process.stdout.write(renderReport(findings, secrets, Math.max(60, Math.min(process.stdout.columns ?? 80, 100))))
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
