import { VitalflowError } from '../errors.ts'

export class RightsError extends VitalflowError<'ING_ERR_HELD' | 'ING_ERR_INVALID' | 'ING_ERR_NOT_FOUND'> {}

export class ExportError extends VitalflowError<'ING_ERR_INVALID' | 'ING_ERR_OUTPUT'> {}
