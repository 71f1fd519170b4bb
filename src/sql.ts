/**
 * A ClickHouse string literal. Only for text the node itself produced (spool
 * file paths, column types read from system.columns, tenant and patient ids
 * checked by the registry); anything from outside goes in as a query parameter.
 */
export function sqlString (s: string): string {
  return `'${s.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`
}
