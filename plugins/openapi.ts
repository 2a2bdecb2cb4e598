import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import fp from 'fastify-plugin'

/**
 * The OpenAPI 3.1 document, generated from the routes' own schemas (so it cannot drift from what
 * the service validates and serializes), served at /openapi.json, with a reference page at /docs.
 * Must be registered before the routes, which it collects as they are added.
 */
export default fp(async function openapi (app) {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Gatehouse',
        version: '0.1.0',
        description: 'Users and authentication: accounts, sign-in with short-lived JWT access tokens, and user look-up.'
      },
      // Relative, so Swagger UI and generated clients call the host that served the document.
      servers: [{ url: '/', description: 'The Gatehouse instance serving this document' }],
      tags: [
        { name: 'users', description: 'User accounts' },
        { name: 'auth', description: 'Sign-in and the current user' },
        { name: 'health', description: 'Probes' }
      ],
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'An access token from POST /api/auth/login' }
        }
      }
    },
    // Shared schemas become named components (#/components/schemas/User), which SDK generators turn into types.
    // Every shared schema is added with an $id (routes/schemas.ts), so the name is always there.
    refResolver: { buildLocalReference: (json) => String(json.$id) }
  })

  await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true })

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())
}, { name: 'openapi' })
