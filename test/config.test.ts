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
})
