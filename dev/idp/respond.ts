/** Responses and page chrome shared by the IdP's own endpoints. */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { readBodyBuffer } from '../http.js'

interface KoaLikeError extends Error {
  error?: string;
  error_description?: string;
}

export function page (title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem;line-height:1.4}
input{width:100%;padding:.4rem;font-size:1rem;box-sizing:border-box}
button{padding:.5rem 1.5rem;font-size:1rem}
.error{color:#a80000}
</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>`
}

const PAGE_HEADERS = {
  'Cache-Control': 'no-store',
  // No scripts anywhere on these pages. No form-action: Chromium applies it to the redirects
  // that follow a form post, which would block the redirect back to the application.
  'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
}

export function sendHtml (res: ServerResponse, status: number, html: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { ...PAGE_HEADERS, 'Content-Type': 'text/html; charset=utf-8', ...headers })
  res.end(html)
}

export function sendJson (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', ...headers })
  res.end(JSON.stringify(body))
}

export async function readBody (req: IncomingMessage, limit: number): Promise<string> {
  return (await readBodyBuffer(req, limit)).toString('utf8')
}

export function escapeHtml (value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

export function describeError (err: unknown): string {
  const e = err as KoaLikeError
  return e?.error_description ?? e?.message ?? String(err)
}
