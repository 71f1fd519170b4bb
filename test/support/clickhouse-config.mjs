// Loads one ClickHouse node's configuration files with ClickHouse itself (chDB, in a process of its own:
// chDB binds one data directory and one configuration per process) and prints what the server made of
// them as JSON: its clusters, macros, users and settings profiles. A file ClickHouse cannot read makes
// the session fail to open, and this process exit 1.
//   node test/support/clickhouse-config.mjs <dir with config.xml, config.d/, users.xml, users.d/> <data dir>
import { Session } from 'chdb'

const [dir, data] = process.argv.slice(2)
const session = new Session(data, { connectionArgs: [`--config-file=${dir}/config.xml`] })
const rows = (q) => session.query(q, 'JSONEachRow').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l))
try {
  process.stdout.write(JSON.stringify({
    clusters: rows('SELECT cluster, shard_num, replica_num, host_name, port, internal_replication FROM system.clusters ORDER BY cluster, shard_num, replica_num'),
    macros: rows('SELECT macro, substitution FROM system.macros ORDER BY macro'),
    users: rows('SELECT name, storage, host_ip, host_names FROM system.users ORDER BY name'),
    profiles: rows('SELECT profile_name, user_name, setting_name, value, inherit_profile FROM system.settings_profile_elements ORDER BY profile_name, user_name, index'),
    knownSettings: rows('SELECT name FROM system.settings').map((r) => r.name),
  }) + '\n')
} finally {
  session.cleanup()
}
