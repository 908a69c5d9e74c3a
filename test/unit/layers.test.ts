// Layers point one way: the folders of src/ (a top-level file counts as its own folder) must
// not import each other in a circle, and policy, the pure core of authorization, imports nothing
// of the gateway outside itself. The graph is read from the sources, as written.
import t from 'tap'
import { readFileSync, readdirSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src')

/** No folder cycle is excused. */
const KNOWN: ReadonlyArray<readonly [string, string]> = []

interface Import { from: string, to: string, specifier: string }

function sources (dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap(e => {
    const path = join(dir, e.name)
    if (e.isDirectory()) return sources(path)
    return e.isFile() && e.name.endsWith('.ts') ? [path] : []
  })
}

/** Every specifier of `import … from '…'`, `export … from '…'`, `import '…'` and `import('…')`. */
function specifiers (text: string): string[] {
  const found: string[] = []
  for (const m of text.matchAll(/(?:\bfrom\s+|\bimport\s*\(?\s*)(['"])([^'"\n]+)\1/g)) found.push(m[2] as string)
  return found
}

/** `src/config.ts` → config, `src/policy/rules.ts` → policy. */
function folderOf (file: string): string {
  const [first = '', ...rest] = relative(SRC, file).split(sep)
  return rest.length === 0 ? first.replace(/\.ts$/, '') : first
}

const imports: Import[] = sources(SRC).flatMap(file => specifiers(readFileSync(file, 'utf8'))
  .filter(s => s.startsWith('.'))
  .map(specifier => ({ from: file, to: resolve(dirname(file), specifier).replace(/\.js$/, '.ts'), specifier })))

/** Folder → folders it imports, with one file-level import that shows each edge. */
function folderGraph (skip: ReadonlyArray<readonly [string, string]>): Map<string, Map<string, Import>> {
  const skipped = (a: string, b: string): boolean => skip.some(([x, y]) => (x === a && y === b) || (x === b && y === a))
  const graph = new Map<string, Map<string, Import>>()
  for (const i of imports) {
    const a = folderOf(i.from)
    const b = folderOf(i.to)
    if (a === b || skipped(a, b)) continue
    const edges = graph.get(a) ?? new Map<string, Import>()
    if (!edges.has(b)) edges.set(b, i)
    graph.set(a, edges)
  }
  return graph
}

/** One cycle, as the folders along it (first repeated at the end), or undefined. */
function findCycle (graph: Map<string, Map<string, Import>>): string[] | undefined {
  const state = new Map<string, 'open' | 'done'>()
  const path: string[] = []
  const visit = (node: string): string[] | undefined => {
    state.set(node, 'open')
    path.push(node)
    for (const next of [...(graph.get(node)?.keys() ?? [])].sort()) {
      if (state.get(next) === 'open') return [...path.slice(path.indexOf(next)), next]
      if (state.get(next) === undefined) {
        const cycle = visit(next)
        if (cycle !== undefined) return cycle
      }
    }
    path.pop()
    state.set(node, 'done')
    return undefined
  }
  for (const node of [...graph.keys()].sort()) {
    if (state.get(node) !== undefined) continue
    const cycle = visit(node)
    if (cycle !== undefined) return cycle
  }
  return undefined
}

function describe (graph: Map<string, Map<string, Import>>, cycle: string[]): string {
  return cycle.slice(0, -1).map((a, k) => {
    const edge = graph.get(a)?.get(cycle[k + 1] as string) as Import
    return `${a} → ${cycle[k + 1] as string} (${relative(SRC, edge.from)} imports '${edge.specifier}')`
  }).join('\n')
}

t.test('the import graph is read: every file of src/ and its relative imports', async t => {
  t.ok(imports.length > 50, `${imports.length} relative imports found`)
  t.ok(imports.some(i => folderOf(i.from) === 'app' && folderOf(i.to) === 'config'), 'app.ts imports config.ts')
  // The checker itself finds a planted cycle, and names the files that make it.
  const planted = folderGraph([])
  planted.set('policy', new Map([...(planted.get('policy') ?? []), ['app', { from: join(SRC, 'policy', 'x.ts'), to: join(SRC, 'app.ts'), specifier: '../app.js' }]]))
  const cycle = findCycle(planted)
  t.ok(cycle !== undefined && cycle.includes('policy') && cycle.includes('app'), `a planted policy → app edge is found: ${cycle?.join(' → ') ?? 'nothing'}`)
})

t.test('no folder cycle', async t => {
  const graph = folderGraph(KNOWN)
  const cycle = findCycle(graph)
  t.equal(cycle, undefined, cycle !== undefined ? `folder cycle:\n${describe(graph, cycle)}` : 'acyclic')
  for (const [a, b] of KNOWN) {
    const full = folderGraph([])
    if (full.get(a)?.has(b) !== true || full.get(b)?.has(a) !== true) t.comment(`KNOWN holds ${a} ⇄ ${b}, which is no longer a cycle: remove it`)
  }
})

t.test('config → policy only: policy never imports config', async t => {
  const graph = folderGraph([])
  t.notOk(graph.get('policy')?.has('config'), 'policy does not import config')
  t.notOk(KNOWN.some(pair => pair.includes('config') && pair.includes('policy')), 'and config ⇄ policy is not excused')
})

t.test('src/policy/ imports nothing of the gateway outside itself', async t => {
  const policy = join(SRC, 'policy') + sep
  const outside = imports.filter(i => i.from.startsWith(policy) && !i.to.startsWith(policy))
  t.same(outside.map(i => `${relative(SRC, i.from)} imports '${i.specifier}'`), [], 'only node: built-ins and packages besides its own files')
})

t.test('the core imports no plugin, no route, no proxy and not Fastify', async t => {
  const core = ['config.ts', 'config/', 'principal/', 'policy/', 'oidc/', 'graph/', 'tokens/jar.ts', 'tokens/principal.ts', 'egress/egress.ts'].map(p => join(SRC, p))
  const inCore = (file: string): boolean => core.some(c => c.endsWith('.ts') ? file === c : file.startsWith(c))
  const wrong = imports.filter(i => inCore(i.from) && !inCore(i.to)).map(i => `${relative(SRC, i.from)} imports '${i.specifier}'`)
  t.same(wrong, [], 'core files import only core files (and packages)')
  const fastify = sources(SRC).filter(inCore).filter(f => /from 'fastify(-plugin)?'/.test(readFileSync(f, 'utf8'))).map(f => relative(SRC, f))
  t.same(fastify, [], 'and no core file imports Fastify')
})
