import { describe, expect, it } from 'vitest'
import { DEFAULT_LIMITS } from '../src/broker/index.ts'
import { CONFIG_DEFAULTS, ConfigError, loadConfig, type Config } from '../src/config/index.ts'
import { testConfig } from './support/node.ts'

describe('configuration', () => {
  it('starts from embedded defaults', () => {
    const c = loadConfig({})
    expect(c).toMatchObject({ DATA_DIR: './data', MQTT_PORT: 1883, MQTTS_PORT: 8883, HTTP_PORT: 8080, CLICKHOUSE_DATABASE: 'vitalflow' })
    expect(c.CLICKHOUSE_URL).toBeUndefined()
  })

  it('coerces VF_ variables', () => {
    expect(loadConfig({ VF_MQTT_PORT: '0', VF_MQTT_TCP: 'false', VF_BATCH_MAX_ROWS: '10' })).toMatchObject({ MQTT_PORT: 0, MQTT_TCP: false, BATCH_MAX_ROWS: 10 })
  })

  it('acknowledges after the log unless told to wait for the store', () => {
    expect(loadConfig({})).toMatchObject({ ACK_AFTER: 'log', INSERT_QUORUM: 2 })
    expect(loadConfig({ VF_ACK_AFTER: 'store', VF_INSERT_QUORUM: '3' })).toMatchObject({ ACK_AFTER: 'store', INSERT_QUORUM: 3 })
  })

  it.each([
    ['VF_MQTT_PORT', '70000'], ['VF_BATCH_MAX_AGE_MS', 'abc'], ['VF_CLICKHOUSE_URL', 'not-a-url'], ['VF_MASTER_KEY', 'short'],
    ['VF_LOG_LEVEL', 'loud'], ['VF_CLICKHOUSE_DATABASE', 'x; DROP TABLE y'], ['VF_CLICKHOUSE_CLUSTER', "c' ON CLUSTER x"],
    ['VF_ACK_AFTER', 'quorum'], ['VF_INSERT_QUORUM', '0'],
  ])('stops on %s=%s with a message naming the variable', (key, value) => {
    expect(() => loadConfig({ [key]: value })).toThrow(ConfigError)
    expect(() => loadConfig({ [key]: value })).toThrow(key)
  })

  it('refuses a write-ahead log budget that the segment being written could fill alone (it would stop every PUBACK for good)', () => {
    for (const [segment, budget] of [['65536', '8192'], ['65536', '65536'], ['65536', '131071']]) {
      const env = { VF_WAL_SEGMENT_BYTES: segment, VF_WAL_BUDGET_BYTES: budget }
      expect(() => loadConfig(env)).toThrow(ConfigError)
      expect(() => loadConfig(env)).toThrow(/VF_WAL_BUDGET_BYTES.*VF_WAL_SEGMENT_BYTES/)
    }
    expect(loadConfig({ VF_WAL_SEGMENT_BYTES: '65536', VF_WAL_BUDGET_BYTES: '131072' })).toMatchObject({ WAL_BUDGET_BYTES: 131072 })
    // the same rule holds for configuration built in code
    expect(() => loadConfig({}, { WAL_SEGMENT_BYTES: 1 << 20, WAL_BUDGET_BYTES: 1 << 19 })).toThrow(ConfigError)
  })

  it.each([
    ['RESEARCH_MIN_GROUP', 1], ['MQTT_PORT', 70_000], ['SESSION_IDLE_MS', 10], ['LOG_LEVEL', 'loud'], ['PUBLISH_RATE', -1], ['MQTT_TCP', 'maybe'],
  ] as Array<[keyof Config, unknown]>)('an override goes through the schema: %s = %s stops with a message naming the override', (key, value) => {
    const overrides = { [key]: value } as Partial<Config>
    expect(() => loadConfig({}, overrides)).toThrow(ConfigError)
    expect(() => loadConfig({}, overrides)).toThrow(`override ${key}:`)
    // the test nodes' configuration is built the same way: a test cannot start a node the schema would refuse
    expect(() => testConfig('/tmp/unused', overrides)).toThrow(ConfigError)
  })

  it('takes a ClickHouse cluster with a server only (embedded chDB is one server)', () => {
    expect(() => loadConfig({ VF_CLICKHOUSE_CLUSTER: 'vitalflow' })).toThrow(/VF_CLICKHOUSE_CLUSTER: a cluster needs VF_CLICKHOUSE_URL/)
    expect(loadConfig({ VF_CLICKHOUSE_CLUSTER: 'vitalflow', VF_CLICKHOUSE_URL: 'http://haproxy:8123' }).CLICKHOUSE_CLUSTER).toBe('vitalflow')
    expect(loadConfig({}).CLICKHOUSE_CLUSTER).toBeUndefined()
  })

  it('refuses an override of a key the schema does not have', () => {
    expect(() => loadConfig({}, { MAX_CONECTIONS: 5 } as Partial<Config>)).toThrow(/override MAX_CONECTIONS: not a configuration key/)
  })

  it('takes valid overrides, typed or as text, over the environment', () => {
    const c = loadConfig({ VF_MQTT_PORT: '1000', VF_MQTT_TCP: 'true' }, { MQTT_PORT: 0, MQTT_TCP: false, PUBLISH_RATE: 5, CLICKHOUSE_URL: undefined })
    expect(c).toMatchObject({ MQTT_PORT: 0, MQTT_TCP: false, PUBLISH_RATE: 5 })
    expect(c.CLICKHOUSE_URL).toBeUndefined()
  })

  it('the broker falls back on the configuration defaults, not on numbers of its own', () => {
    expect(CONFIG_DEFAULTS.MAX_CONNECTIONS_PER_TENANT).toBe(20_000)
    expect(DEFAULT_LIMITS).toEqual({
      publishRate: CONFIG_DEFAULTS.PUBLISH_RATE, publishBurst: CONFIG_DEFAULTS.PUBLISH_BURST, connectionsPerTenant: CONFIG_DEFAULTS.MAX_CONNECTIONS_PER_TENANT,
      authFreeFailures: CONFIG_DEFAULTS.AUTH_FREE_FAILURES, authMaxBackoffSeconds: CONFIG_DEFAULTS.AUTH_MAX_BACKOFF_S,
      receiveMaximum: CONFIG_DEFAULTS.MQTT5_RECEIVE_MAXIMUM, topicAliasMaximum: CONFIG_DEFAULTS.MQTT5_TOPIC_ALIAS_MAXIMUM,
      sessionExpiryMaxSeconds: CONFIG_DEFAULTS.MQTT5_SESSION_EXPIRY_MAX_S, maxPacketBytes: CONFIG_DEFAULTS.MAX_PACKET_BYTES,
      pendingSessions: CONFIG_DEFAULTS.MAX_CONNECTIONS,
    })
  })
})
