export { Registry, RegistryError, FAMILIES } from './registry.ts'
export type { DeviceKey, DeviceRecord, Enrollment, Family, RegistryOptions } from './registry.ts'
export { hashSecret, verifySecret } from './secrets.ts'
