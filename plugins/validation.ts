import { Ajv, type Options } from 'ajv'
import addFormats from 'ajv-formats'
import fp from 'fastify-plugin'

const shared: Options = {
  // An unknown field (role, id, created_at in a signup) is refused, never silently dropped.
  removeAdditional: false,
  useDefaults: true,
  // Every bad field is named in one answer. Inputs are small and bounded (bodyLimit, maxLength,
  // maxItems on every schema), which keeps the cost of collecting all errors bounded too.
  allErrors: true,
  strict: false
}

function withFormats (options: Options): Ajv {
  const ajv = new Ajv(options)
  addFormats.default(ajv)
  return ajv
}

/**
 * Request parsing and validation: JSON only; JSON bodies are checked as sent (a number is not a password), while
 * params and query strings, which arrive as text, are coerced to the declared types.
 */
export default fp(async function validation (app) {
  const body = withFormats({ ...shared, coerceTypes: false })
  const text = withFormats({ ...shared, coerceTypes: 'array' })
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? body : text).compile(schema))
  // The API speaks JSON only: any other body is 415, rather than a string that fails validation.
  app.removeContentTypeParser(['text/plain'])
}, { name: 'validation' })
