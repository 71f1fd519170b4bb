/**
 * The register of processing activities (GDPR art. 30(2); 12Care
 * "verwerkingsregister"; Corsano terms §12.2), generated from the policy and
 * the tenant's retention choices: one activity per purpose.
 */
import { CATEGORIES, PURPOSES, basisFor, type Category, type LegalBasis, type Policy, type Purpose } from './policy.ts'

export interface ProcessingActivity {
  controller: string
  processor: string
  purpose: Purpose
  categories: Array<{ category: Category; basis: LegalBasis; retentionDays: number; source: string }>
  recipients: readonly string[]
  dataSubjects: string
  transfers: string
  policyVersion: string
}

export function registerOfProcessing (
  policy: Policy, tenant: { id: string; name: string }, retentionDays: (category: Category) => number,
): ProcessingActivity[] {
  const out: ProcessingActivity[] = []
  for (const purpose of PURPOSES) {
    const categories = CATEGORIES.flatMap((category) => {
      const basis = basisFor(policy, purpose, category)
      if (basis === null) return []
      const source = policy.collection[category].purpose === purpose
        ? policy.collection[category].source
        : policy.furtherUse.find((u) => u.purpose === purpose && u.category === category)!.source
      return [{ category, basis, retentionDays: retentionDays(category), source }]
    })
    if (categories.length === 0) continue
    out.push({
      controller: `${tenant.name} (${tenant.id})`,
      processor: policy.processor,
      purpose,
      categories,
      recipients: policy.recipients[purpose],
      dataSubjects: 'clients of the controller wearing or using its devices (pseudonymous ids)',
      transfers: 'none outside the EEA/Switzerland',
      policyVersion: policy.version,
    })
  }
  return out
}
