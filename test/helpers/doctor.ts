// The doctor's CLI report (wrapped to the terminal, fixes after an arrow) read back as one
// `LEVEL what — fix` line per finding, for tests that match whole findings.
export function flattenReport (stdout: string): string {
  return stdout.replace(/\n {6}→ /g, ' — ').replace(/\n {6,8}(?=\S)/g, ' ').replace(/^(OK|WARN|ERROR) +/gm, '$1 ')
}
