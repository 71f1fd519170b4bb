export { loadConfig, describeConfig, configSchema, ConfigError, ENV_PREFIX, CONFIG_DEFAULTS } from './schema.ts'
export type { Config } from './schema.ts'
