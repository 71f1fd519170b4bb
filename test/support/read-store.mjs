// Child process of store-scan.ts: opens a chDB directory in a fresh session and
// reports where a string occurs. Plain JS so it runs without a loader.
import { Session } from 'chdb'

const [path, needle] = process.argv.slice(2)
const s = new Session(path)
const q = (sql) => { const t = s.query(sql, 'JSONEachRow').trim(); return t === '' ? [] : t.split('\n').map((l) => JSON.parse(l)) }
const lit = (v) => `'${String(v).replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`
const tables = q("SELECT database, name, engine FROM system.tables WHERE database NOT IN ('system', 'INFORMATION_SCHEMA', 'information_schema') AND engine NOT IN ('MaterializedView', 'View')")
const holding = {}
let rows = 0
for (const t of tables) {
  const fq = `\`${t.database}\`.\`${t.name}\``
  const mergeTree = t.engine.includes('MergeTree')
  const [r] = q(`SELECT count() AS n, countIf(position(toString(tuple(*)), ${lit(needle)}) > 0) AS hit FROM ${fq}${mergeTree ? ' SETTINGS apply_deleted_mask = 0' : ''}`)
  rows += Number(r.n)
  if (Number(r.hit) > 0) holding[fq] = Number(r.hit)
  // every table's DDL too (TTL clauses, comments)
  const [ddl] = q(`SELECT create_table_query AS d FROM system.tables WHERE database = ${lit(t.database)} AND name = ${lit(t.name)}`)
  if (ddl.d.includes(needle)) holding[`${fq} (DDL)`] = 1
}
const parts = q("SELECT table, name, active FROM system.parts WHERE database NOT IN ('system')")
const [detached] = q("SELECT count() AS n FROM system.detached_parts WHERE database NOT IN ('system')")
const mutations = q(`SELECT concat(database, '.', table, ' ', mutation_id) AS m FROM system.mutations WHERE position(command, ${lit(needle)}) > 0`).map((m) => m.m)
s.cleanup?.()
console.log(JSON.stringify({ tables: tables.length, rows, holding, parts, detached: Number(detached.n), mutations }))
