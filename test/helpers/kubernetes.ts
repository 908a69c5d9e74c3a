// Builders for the Kubernetes manifests, for test/deploy/kubernetes.test.ts. No cluster, no
// kustomize and no helm binary run where the tests run (neither npm nor Debian ships helm), so
// these implement the small part of kustomize and of Helm's templates that deploy/ uses, and
// throw on anything else rather than guess. Checked by hand against `kubectl kustomize`
// (kustomize v5.5.0) on the base and the overlays.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import path from 'node:path'
import { parse as parseYaml, parseAllDocuments, stringify as toYamlText } from 'yaml'

export type K8sObject = Record<string, unknown> & { apiVersion: string, kind: string, metadata: { name: string, namespace?: string, labels?: Record<string, string>, annotations?: Record<string, string> } }
type Plain = Record<string, unknown>

const isPlain = (v: unknown): v is Plain => typeof v === 'object' && v !== null && !Array.isArray(v)

function loadDocs (file: string): K8sObject[] {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'))
  const out: K8sObject[] = []
  for (const doc of docs) {
    if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0]?.message ?? 'YAML error'}`)
    const value: unknown = doc.toJS()
    if (value === null || value === undefined) continue
    if (!isPlain(value) || typeof value.apiVersion !== 'string' || typeof value.kind !== 'string' || !isPlain(value.metadata) || typeof value.metadata.name !== 'string') {
      throw new Error(`${file}: every document must be an object with apiVersion, kind and metadata.name`)
    }
    out.push(value as K8sObject)
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// kustomize: resources (files and directories), components, patches (strategic merge, from
// files), images, namespace. In that order, as kustomize applies them.
// ---------------------------------------------------------------------------------------------

const KUSTOMIZATION_KEYS = new Set(['apiVersion', 'kind', 'resources', 'components', 'patches', 'images', 'namespace'])

export function kustomize (dir: string): K8sObject[] {
  return buildKustomization(dir, 'Kustomization', [])
}

function readKustomization (dir: string, kind: 'Kustomization' | 'Component'): Plain {
  const file = path.join(dir, 'kustomization.yaml')
  if (!existsSync(file)) throw new Error(`${dir}: no kustomization.yaml (other names are not supported here)`)
  const k: unknown = parseYaml(readFileSync(file, 'utf8'))
  if (!isPlain(k)) throw new Error(`${file}: not a mapping`)
  for (const key of Object.keys(k)) {
    if (!KUSTOMIZATION_KEYS.has(key)) throw new Error(`${file}: "${key}" is not supported by this builder (supported: ${[...KUSTOMIZATION_KEYS].join(', ')})`)
  }
  const expected = kind === 'Component' ? 'kustomize.config.k8s.io/v1alpha1' : 'kustomize.config.k8s.io/v1beta1'
  if (k.apiVersion !== expected || k.kind !== kind) throw new Error(`${file}: expected apiVersion ${expected}, kind ${kind}`)
  if (kind === 'Component' && k.namespace !== undefined) throw new Error(`${file}: namespace in a Component is not supported here`)
  return k
}

const listOf = (k: Plain, key: string, dir: string): unknown[] => {
  const v = k[key] ?? []
  if (!Array.isArray(v)) throw new Error(`${dir}: ${key} must be a list`)
  return v
}

function buildKustomization (dir: string, kind: 'Kustomization' | 'Component', inherited: K8sObject[]): K8sObject[] {
  const k = readKustomization(dir, kind)
  let objects = [...inherited]
  for (const entry of listOf(k, 'resources', dir)) {
    if (typeof entry !== 'string' || /^[a-z]+:\/\//i.test(entry)) throw new Error(`${dir}: resource ${String(entry)}: only local files and directories are supported`)
    const p = path.resolve(dir, entry)
    const found = statSync(p).isDirectory() ? buildKustomization(p, 'Kustomization', []) : loadDocs(p)
    for (const o of found) {
      if (objects.some(x => sameObject(x, o))) throw new Error(`${dir}: ${o.kind}/${o.metadata.name} is defined twice`)
      objects.push(o)
    }
  }
  for (const entry of listOf(k, 'components', dir)) {
    if (typeof entry !== 'string') throw new Error(`${dir}: components entries must be paths`)
    objects = buildKustomization(path.join(dir, entry), 'Component', objects)
  }
  for (const entry of listOf(k, 'patches', dir)) {
    if (!isPlain(entry) || Object.keys(entry).join() !== 'path' || typeof entry.path !== 'string') {
      throw new Error(`${dir}: patches entries must be { path } (strategic merge patch files; target, options and inline patches are not supported here)`)
    }
    const docs = loadDocs(path.join(dir, entry.path))
    if (docs.length !== 1) throw new Error(`${dir}: patch ${entry.path} must hold exactly one object`)
    const patch = docs[0] as K8sObject
    const targets = objects.filter(o => sameObject(o, patch))
    if (targets.length !== 1) throw new Error(`${dir}: patch ${entry.path} matches ${targets.length} objects (${patch.kind}/${patch.metadata.name})`)
    const target = targets[0] as K8sObject
    objects[objects.indexOf(target)] = strategicMerge(target, patch, `${patch.kind}`) as K8sObject
  }
  for (const entry of listOf(k, 'images', dir)) {
    if (!isPlain(entry) || typeof entry.name !== 'string' || Object.keys(entry).some(key => !['name', 'newName', 'newTag'].includes(key))) {
      throw new Error(`${dir}: images entries must be { name, newName?, newTag? }`)
    }
    let hits = 0
    for (const o of objects) {
      for (const c of podContainers(o)) {
        const m = /^([^@:]+(?::\d+\/[^@:]+)?)(?::([^@]+))?$/.exec(String(c.image))
        if (m === null) throw new Error(`${o.kind}/${o.metadata.name}: image "${String(c.image)}" (digests are not supported here)`)
        if (m[1] !== entry.name) continue
        c.image = `${String(entry.newName ?? m[1])}${entry.newTag !== undefined ? ':' + String(entry.newTag) : m[2] !== undefined ? ':' + m[2] : ''}`
        hits++
      }
    }
    if (hits === 0) throw new Error(`${dir}: images entry ${entry.name} matches no container`)
  }
  if (k.namespace !== undefined) {
    if (typeof k.namespace !== 'string') throw new Error(`${dir}: namespace must be a string`)
    for (const o of objects) {
      if (CLUSTER_SCOPED.has(o.kind)) throw new Error(`${dir}: namespace on the cluster-scoped ${o.kind} is not supported here`)
      o.metadata.namespace = k.namespace
    }
  }
  return objects
}

const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition', 'PriorityClass', 'StorageClass', 'PersistentVolume'])

/** Same group, kind and name (a patch's version may differ, as in kustomize). */
function sameObject (a: K8sObject, b: K8sObject): boolean {
  const group = (v: string): string => v.includes('/') ? v.split('/')[0] as string : ''
  return group(a.apiVersion) === group(b.apiVersion) && a.kind === b.kind && a.metadata.name === b.metadata.name &&
    (a.metadata.namespace ?? '') === (b.metadata.namespace ?? '')
}

/** The containers of a workload's pod template (mutable). */
export function podContainers (o: K8sObject): Plain[] {
  const spec = o.spec as Plain | undefined
  const podSpec = o.kind === 'Pod' ? spec : ((spec?.template as Plain | undefined)?.spec as Plain | undefined)
  if (podSpec === undefined) return []
  return [...(podSpec.initContainers as Plain[] | undefined) ?? [], ...(podSpec.containers as Plain[] | undefined) ?? []]
}

/** Lists merged element by element on a key, as Kubernetes' strategic merge does for them; any other list in a patch is refused. */
const MERGE_KEYS: Record<string, string> = { containers: 'name', initContainers: 'name', env: 'name', volumes: 'name', volumeMounts: 'mountPath' }

export function strategicMerge (base: unknown, patch: unknown, at: string): unknown {
  if (!isPlain(patch)) return patch
  if (!isPlain(base)) base = {}
  const out: Plain = { ...(base as Plain) }
  for (const [key, value] of Object.entries(patch)) {
    if (key.startsWith('$')) throw new Error(`${at}.${key}: strategic merge directives are not supported here`)
    const where = `${at}.${key}`
    if (value === null) {
      delete out[key]
    } else if (Array.isArray(value)) {
      const mergeKey = MERGE_KEYS[key]
      if (mergeKey === undefined) throw new Error(`${where}: a list in a patch (kustomize would replace or merge it by its own rules; not supported here)`)
      const merged = [...((out[key] as Plain[] | undefined) ?? [])]
      for (const item of value) {
        if (!isPlain(item) || typeof item[mergeKey] !== 'string') throw new Error(`${where}: every item needs ${mergeKey}`)
        const i = merged.findIndex(m => m[mergeKey] === item[mergeKey])
        if (i === -1) merged.push(item)
        else merged[i] = strategicMerge(merged[i], item, `${where}[${String(item[mergeKey])}]`) as Plain
      }
      out[key] = merged
    } else if (isPlain(value)) {
      out[key] = strategicMerge(out[key], value, where)
    } else {
      out[key] = value
    }
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// Helm: Chart.yaml, values.yaml (deep-merged with the given values), templates/*.yaml and
// *.tpl with these constructs only: {{ .Values.a.b }}, {{ .Release.Name }}, {{ .Chart.X }},
// "| quote", "toYaml X | nindent N", "include "name" . | nindent N", {{- if X }} ... {{- end }},
// {{- define "name" -}} ... {{- end }}, {{/* comments */}}, and the trim markers.
// ---------------------------------------------------------------------------------------------

type Node = { t: 'text', s: string } | { t: 'expr', src: string } | { t: 'if', cond: string, body: Node[] } | { t: 'define', name: string, body: Node[] }

interface Scope { Values: Plain, Release: { Name: string, Namespace: string, Service: string }, Chart: Plain }

export interface HelmRender { objects: K8sObject[], byTemplate: Map<string, string> }

export function helmTemplate (chartDir: string, release: { name: string, namespace: string }, values: Plain = {}): HelmRender {
  const chart: unknown = parseYaml(readFileSync(path.join(chartDir, 'Chart.yaml'), 'utf8'))
  if (!isPlain(chart)) throw new Error('Chart.yaml: not a mapping')
  const defaults: unknown = parseYaml(readFileSync(path.join(chartDir, 'values.yaml'), 'utf8'))
  const chartValues = { ...chart }
  // Helm exposes Chart.yaml's fields capitalized: .Chart.AppVersion, .Chart.Name.
  const Chart = Object.fromEntries(Object.entries(chartValues).map(([k, v]) => [k[0]?.toUpperCase() + k.slice(1), v]))
  const scope: Scope = { Values: deepMerge(isPlain(defaults) ? defaults : {}, values), Release: { Name: release.name, Namespace: release.namespace, Service: 'Helm' }, Chart }
  const templatesDir = path.join(chartDir, 'templates')
  const files = readdirSync(templatesDir).sort()
  for (const f of files) if (!/\.(yaml|tpl)$/.test(f)) throw new Error(`templates/${f}: only .yaml and .tpl files are supported here`)
  const defines = new Map<string, Node[]>()
  const parsed = new Map<string, Node[]>()
  for (const f of files) {
    const nodes = parseTemplate(readFileSync(path.join(templatesDir, f), 'utf8'), `templates/${f}`)
    for (const n of nodes) if (n.t === 'define') defines.set(n.name, n.body)
    parsed.set(f, nodes)
  }
  const byTemplate = new Map<string, string>()
  const objects: K8sObject[] = []
  for (const [f, nodes] of parsed) {
    // Helm renders files starting with _ only through include.
    if (f.startsWith('_')) continue
    const text = renderNodes(nodes, scope, defines, `templates/${f}`)
    byTemplate.set(f, text)
    const tmp = parseAllDocuments(text)
    for (const doc of tmp) {
      if (doc.errors.length > 0) throw new Error(`templates/${f} rendered to invalid YAML: ${doc.errors[0]?.message ?? ''}\n${text}`)
      const value: unknown = doc.toJS()
      if (value === null || value === undefined) continue
      objects.push(value as K8sObject)
    }
  }
  return { objects, byTemplate }
}

function deepMerge (base: Plain, over: Plain): Plain {
  const out: Plain = { ...base }
  for (const [k, v] of Object.entries(over)) out[k] = isPlain(v) && isPlain(out[k]) ? deepMerge(out[k] as Plain, v) : v
  return out
}

function parseTemplate (text: string, file: string): Node[] {
  // Split into text and actions, applying the trim markers ({{- trims the whitespace before, -}} after).
  const parts: Array<{ t: 'text', s: string } | { t: 'action', s: string }> = []
  const re = /\{\{(-\s)?([\s\S]*?)(\s-)?\}\}/g
  let last = 0
  let trimNext = false
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    let before = text.slice(last, m.index)
    if (trimNext) before = before.replace(/^\s+/, '')
    if (m[1] !== undefined) before = before.replace(/\s+$/, '')
    parts.push({ t: 'text', s: before })
    parts.push({ t: 'action', s: (m[2] as string).trim() })
    trimNext = m[3] !== undefined
    last = m.index + m[0].length
  }
  let rest = text.slice(last)
  if (trimNext) rest = rest.replace(/^\s+/, '')
  parts.push({ t: 'text', s: rest })

  const root: Node[] = []
  const stack: Array<{ body: Node[], open: string }> = [{ body: root, open: 'file' }]
  for (const p of parts) {
    const top = stack[stack.length - 1] as { body: Node[], open: string }
    if (p.t === 'text') { if (p.s !== '') top.body.push({ t: 'text', s: p.s }); continue }
    const a = p.s
    if (a.startsWith('/*')) { if (!a.endsWith('*/')) throw new Error(`${file}: unclosed comment`); continue }
    let m: RegExpExecArray | null
    if ((m = /^if\s+(.+)$/.exec(a)) !== null) {
      const node: Node = { t: 'if', cond: m[1] as string, body: [] }
      top.body.push(node)
      stack.push({ body: node.body, open: 'if' })
    } else if ((m = /^define\s+"([^"]+)"$/.exec(a)) !== null) {
      if (stack.length !== 1) throw new Error(`${file}: define inside a block`)
      const node: Node = { t: 'define', name: m[1] as string, body: [] }
      top.body.push(node)
      stack.push({ body: node.body, open: 'define' })
    } else if (a === 'end') {
      if (stack.length === 1) throw new Error(`${file}: {{ end }} without a block`)
      stack.pop()
    } else if (/^(else|range|with|block|template|tpl)\b|:=|\$/.test(a)) {
      throw new Error(`${file}: "{{ ${a} }}" is not supported by this renderer`)
    } else {
      top.body.push({ t: 'expr', src: a })
    }
  }
  if (stack.length !== 1) throw new Error(`${file}: unclosed ${stack[stack.length - 1]?.open ?? ''}`)
  return root
}

function renderNodes (nodes: Node[], scope: Scope, defines: Map<string, Node[]>, file: string): string {
  let out = ''
  for (const n of nodes) {
    if (n.t === 'text') out += n.s
    else if (n.t === 'expr') out += printValue(evalPipeline(n.src, scope, defines, file), file, n.src)
    else if (n.t === 'if' && truthy(evalPipeline(n.cond, scope, defines, file))) out += renderNodes(n.body, scope, defines, file)
    // A define renders only through include.
  }
  return out
}

function truthy (v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === '') return false
  if (Array.isArray(v)) return v.length > 0
  if (isPlain(v)) return Object.keys(v).length > 0
  return true
}

function printValue (v: unknown, file: string, src: string): string {
  if (typeof v === 'string') return v
  if (typeof v === 'number' || typeof v === 'boolean') return String(v)
  throw new Error(`${file}: {{ ${src} }} gives ${v === undefined ? 'no value' : 'a ' + typeof v} (a map needs toYaml)`)
}

function tokens (cmd: string, file: string): string[] {
  const out = cmd.match(/"(?:[^"\\]|\\.)*"|\S+/g)
  if (out === null) throw new Error(`${file}: empty command`)
  return out
}

function evalArg (tok: string, scope: Scope, file: string): unknown {
  if (tok.startsWith('"')) return JSON.parse(tok) as string
  if (/^\d+$/.test(tok)) return Number(tok)
  if (tok === '.') return scope
  if (/^(\.[A-Za-z_][A-Za-z0-9_]*)+$/.test(tok)) {
    let v: unknown = scope
    for (const key of tok.slice(1).split('.')) {
      if (!isPlain(v) || !Object.hasOwn(v, key)) throw new Error(`${file}: ${tok} is not defined`)
      v = v[key]
    }
    return v
  }
  throw new Error(`${file}: "${tok}" is not supported by this renderer`)
}

function evalPipeline (src: string, scope: Scope, defines: Map<string, Node[]>, file: string): unknown {
  const commands = src.split('|').map(c => c.trim())
  let value: unknown
  commands.forEach((cmd, i) => {
    const [fn, ...rawArgs] = tokens(cmd, file) as [string, ...string[]]
    const args = rawArgs.map(a => evalArg(a, scope, file))
    if (i > 0) args.push(value)
    if (fn.startsWith('.') || fn.startsWith('"')) {
      if (i > 0 || rawArgs.length > 0) throw new Error(`${file}: "${cmd}" is not supported by this renderer`)
      value = evalArg(fn, scope, file)
    } else if (fn === 'quote' && args.length === 1) {
      value = JSON.stringify(printValue(args[0], file, src))
    } else if (fn === 'toYaml' && args.length === 1) {
      // sigs.k8s.io/yaml sorts keys; Helm's toYaml drops the final newline.
      value = toYamlText(args[0], { sortMapEntries: true }).replace(/\n$/, '')
    } else if ((fn === 'nindent' || fn === 'indent') && args.length === 2 && typeof args[0] === 'number') {
      const pad = ' '.repeat(args[0])
      const text = String(printValue(args[1], file, src)).split('\n').map(l => pad + l).join('\n')
      value = fn === 'nindent' ? '\n' + text : text
    } else if (fn === 'include' && args.length === 2 && typeof args[0] === 'string') {
      const body = defines.get(args[0])
      if (body === undefined) throw new Error(`${file}: include of undefined template "${args[0]}"`)
      if (args[1] !== scope) throw new Error(`${file}: include with a context other than "." is not supported here`)
      value = renderNodes(body, scope, defines, file)
    } else {
      throw new Error(`${file}: "${cmd}" is not supported by this renderer`)
    }
  })
  return value
}

// ---------------------------------------------------------------------------------------------
// Strict fields: kubernetes-models' schemas accept any unknown field (a misspelt
// `readinesProbe` validates), where `kubectl apply` (strict field validation) refuses it. The
// fields each kind has are read from kubernetes-models' type declarations.
// ---------------------------------------------------------------------------------------------

let kindTypes: { checker: ts.TypeChecker, kinds: ts.Type, node: ts.Node } | undefined

function loadKindTypes (): NonNullable<typeof kindTypes> {
  if (kindTypes !== undefined) return kindTypes
  const file = path.join(path.dirname(fileURLToPath(import.meta.url)), 'kubernetes-models.ts')
  const program = ts.createProgram([file], { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022, strict: true, noEmit: true, skipLibCheck: true })
  const checker = program.getTypeChecker()
  const source = program.getSourceFile(file)
  if (source === undefined) throw new Error(`cannot read ${file}`)
  const decl = source.statements.find((s): s is ts.InterfaceDeclaration => ts.isInterfaceDeclaration(s) && s.name.text === 'Kinds')
  if (decl === undefined) throw new Error(`${file}: no interface Kinds`)
  kindTypes = { checker, kinds: checker.getTypeAtLocation(decl), node: decl }
  return kindTypes
}

/** The paths of fields that the object's kind does not have (empty: every field is known). */
export function unknownFields (o: K8sObject): string[] {
  const { checker, kinds, node } = loadKindTypes()
  const kindProp = kinds.getProperty(`${o.apiVersion}/${o.kind}`)
  if (kindProp === undefined) throw new Error(`${o.apiVersion} ${o.kind}: not in test/helpers/kubernetes-models.ts`)
  const found: string[] = []
  const walk = (value: unknown, type: ts.Type, at: string): void => {
    let t = checker.getNonNullableType(type)
    if (t.isUnion()) {
      // IntOrString and the like: only the object-shaped member has fields.
      const objects = t.types.filter(m => (m.flags & ts.TypeFlags.Object) !== 0)
      if (objects.length !== 1) return
      t = objects[0] as ts.Type
    }
    if (Array.isArray(value)) {
      if (!checker.isArrayType(t)) { found.push(`${at} (a list where the schema has none)`); return }
      const item = checker.getTypeArguments(t as ts.TypeReference)[0]
      if (item !== undefined) value.forEach((v, i) => walk(v, item, `${at}[${i}]`))
      return
    }
    if (!isPlain(value) || (t.flags & ts.TypeFlags.Object) === 0) return
    for (const [key, v] of Object.entries(value)) {
      const prop = t.getProperty(key)
      const next = prop !== undefined ? checker.getTypeOfSymbolAtLocation(prop, node) : t.getStringIndexType()
      if (next === undefined) found.push(`${at}.${key}`)
      else walk(v, next, `${at}.${key}`)
    }
  }
  walk(o, checker.getTypeOfSymbolAtLocation(kindProp, node), `${o.kind}/${o.metadata.name}`)
  return found
}
