export { loadConfig, describeConfig, configSchema, ConfigError, ENV_PREFIX } from './schema.ts'
export type { Config } from './schema.ts'
