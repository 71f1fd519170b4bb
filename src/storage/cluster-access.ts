/**
 * A tenant's dashboard access on a cluster: what server mode creates for it on one server
 * (tenant-access.ts: profile, user, quota, grants, row policies), each statement ON CLUSTER so every
 * replica of every shard has the same user and policies. A dashboard reads the Distributed tables;
 * their queries run on the shards' local tables as the same user (the cluster's <secret>), so the
 * grants and both row policies (the tenant's and the ingest service's) are made on the local tables too.
 */
import { ClusterDdlError, clusterDdl } from './cluster-ddl.ts'
import { DASHBOARD_TABLES, tenantAccessDdl, type TenantAccess } from './tenant-access.ts'

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/
/** An access entity's CREATE: ON CLUSTER goes right after its name. */
const CREATE_ENTITY = /^(CREATE (?:SETTINGS PROFILE|USER|QUOTA|ROW POLICY) IF NOT EXISTS `[^`]+`)( [\s\S]*)$/
const GRANT = /^GRANT ([\s\S]+)$/

export function clusterTenantAccessDdl (db: string, cluster: string, tenant: string, password: string, serviceUser = 'default'): TenantAccess {
  if (!NAME.test(cluster)) throw new ClusterDdlError('cluster name must match [A-Za-z_][A-Za-z0-9_]*')
  const access = tenantAccessDdl(db, tenant, password, serviceUser)
  const placed = new Map(clusterDdl({ database: db, cluster }).tables.map((t) => [t.name, t]))
  const tableRef = new RegExp(`\`${db}\`\\.\`(${DASHBOARD_TABLES.join('|')})\``)
  const statements = access.statements.flatMap((s) => {
    const table = tableRef.exec(s)?.[1]
    // a statement on a dashboard table is made on the Distributed table and on the local one under it
    const local = table === undefined ? undefined : placed.get(table)
    if (table !== undefined && local?.placement !== 'sharded') throw new ClusterDdlError(`dashboard table ${table} is not sharded by tenant on the cluster`)
    const copies = local === undefined ? [s] : [s, s.replace(tableRef, `\`${db}\`.\`${local.local}\``)]
    return copies.map((c) => {
      const entity = CREATE_ENTITY.exec(c)
      if (entity !== null) return `${entity[1]!} ON CLUSTER ${cluster}${entity[2]!}`
      const grant = GRANT.exec(c)
      if (grant !== null) return `GRANT ON CLUSTER ${cluster} ${grant[1]!}`
      throw new ClusterDdlError(`tenant access statement not translated for a cluster: ${c.slice(0, 60)}`)
    })
  })
  return { user: access.user, statements }
}
