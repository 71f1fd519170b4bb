import { describe, expect, it } from 'vitest'
import { ConfigError, loadConfig } from '../src/config/index.ts'

describe('configuration', () => {
  it('starts from embedded defaults', () => {
    const c = loadConfig({})
    expect(c).toMatchObject({ DATA_DIR: './data', MQTT_PORT: 1883, MQTTS_PORT: 8883, HTTP_PORT: 8080, CLICKHOUSE_DATABASE: 'vitalflow' })
    expect(c.CLICKHOUSE_URL).toBeUndefined()
  })

  it('coerces VF_ variables', () => {
    expect(loadConfig({ VF_MQTT_PORT: '0', VF_MQTT_TCP: 'false', VF_BATCH_MAX_ROWS: '10' })).toMatchObject({ MQTT_PORT: 0, MQTT_TCP: false, BATCH_MAX_ROWS: 10 })
  })

  it.each([
    ['VF_MQTT_PORT', '70000'], ['VF_BATCH_MAX_AGE_MS', 'abc'], ['VF_CLICKHOUSE_URL', 'not-a-url'], ['VF_MASTER_KEY', 'short'],
    ['VF_LOG_LEVEL', 'loud'], ['VF_CLICKHOUSE_DATABASE', 'x; DROP TABLE y'],
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
})
