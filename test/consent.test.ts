import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { CATEGORIES, COLLECTION, ConsentIndex, needsConsent } from '../src/consent/index.ts'

const tenants = ['t1', 't2']
const patients = ['p1', 'p2', 'p3']
const event = fc.record({
  tenant: fc.constantFrom(...tenants),
  patient: fc.constantFrom(...patients),
  category: fc.constantFrom(...CATEGORIES),
  action: fc.constantFrom('grant' as const, 'withdraw' as const),
  validFromMs: fc.integer({ min: 0, max: 1000 }),
})

describe('consent index', () => {
  it('passes a category iff its own basis holds or the last event for it is a grant, per tenant and patient', () => {
    fc.assert(fc.property(fc.array(event, { maxLength: 60 }), (events) => {
      const index = new ConsentIndex()
      // independent model: replay the log per key; the grant in force is the first grant since the last withdrawal
      const model = new Map<string, { version: number; fromMs: number } | null>()
      for (const e of events) {
        const version = index.nextVersion(e.tenant, e.patient)
        index.apply({ ...e, purpose: 'care', version, recordedBy: 'x', source: 'app', recordedAtMs: 2000 })
        const k = `${e.tenant}/${e.patient}/${e.category}`
        if (e.action === 'withdraw') model.set(k, null)
        else if (model.get(k) == null) model.set(k, { version, fromMs: e.validFromMs })
      }
      for (const t of [...tenants, 't3']) {
        for (const p of [...patients, null]) {
          const gate = index.gate(t, p)
          for (const c of CATEGORIES) {
            const g = gate(c)
            if (!needsConsent(c)) {
              expect(g).toMatchObject({ basis: COLLECTION[c].basis, purpose: COLLECTION[c].purpose, version: 0 })
              continue
            }
            const expected = p === null ? null : model.get(`${t}/${p}/${c}`) ?? null
            if (expected === null) expect(g).toBeNull()
            else expect(g).toMatchObject({ basis: 'consent', purpose: 'care', version: expected.version, fromMs: expected.fromMs })
          }
        }
      }
    }), { numRuns: 300 })
  })

  it('a guardian\'s grant after one that was not a guardian\'s takes over, so it covers a minor', () => {
    const index = new ConsentIndex()
    index.setMinorUntil('t1', 'kid', Date.now() + 86_400_000)
    const grant = (version: number, source: string, validFromMs: number): void => {
      index.apply({ tenant: 't1', patient: 'kid', purpose: 'care', category: 'vitals', action: 'grant', version, recordedBy: 'x', source, recordedAtMs: validFromMs, validFromMs })
    }
    grant(1, 'professional', 100)
    expect(index.gate('t1', 'kid')('vitals')).toBeNull()
    grant(2, 'guardian', 200)
    expect(index.gate('t1', 'kid')('vitals')).toMatchObject({ version: 2, fromMs: 200, guardian: true })
    grant(3, 'professional', 300) // a later grant of another kind does not undo it
    expect(index.gate('t1', 'kid')('vitals')).toMatchObject({ version: 2, fromMs: 200, guardian: true })
  })

  it('numbers each patient\'s consent events from 1 upward, per tenant', () => {
    const index = new ConsentIndex()
    expect(index.nextVersion('t1', 'p1')).toBe(1)
    index.apply({ tenant: 't1', patient: 'p1', purpose: 'care', category: 'vitals', action: 'grant', version: 1, recordedBy: 'x', source: 'app', recordedAtMs: 1, validFromMs: 1 })
    expect(index.nextVersion('t1', 'p1')).toBe(2)
    expect(index.nextVersion('t2', 'p1')).toBe(1)
  })
})
