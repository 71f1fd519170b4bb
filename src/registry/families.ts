/** Device families the registry enrols: what a device is decides what it may publish. */
export const FAMILIES = ['bracelet', 'cvitals', 'calarm', 'gateway', 'responder'] as const
export type Family = (typeof FAMILIES)[number]
