export class RightsError extends Error {
  constructor (readonly code: 'ING_ERR_HELD' | 'ING_ERR_INVALID' | 'ING_ERR_NOT_FOUND', message: string) {
    super(message)
    this.name = 'RightsError'
  }
}

export class ExportError extends Error {
  constructor (readonly code: 'ING_ERR_INVALID' | 'ING_ERR_OUTPUT', message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'ExportError'
  }
}
