// Names of patients, for a care team that wants them, live in this browser only (localStorage,
// per tenant): the node and its API only ever see pseudonymous ids, and no request carries a name.
const key = (tenant) => `vf.names.${tenant}`

export function names (tenant) {
  try { return JSON.parse(localStorage.getItem(key(tenant)) ?? '{}') } catch { return {} }
}

export function setName (tenant, patient, name) {
  const all = new Map(Object.entries(names(tenant)))
  if (name.trim() === '') all.delete(patient)
  else all.set(patient, name.trim())
  localStorage.setItem(key(tenant), JSON.stringify(Object.fromEntries(all)))
}
