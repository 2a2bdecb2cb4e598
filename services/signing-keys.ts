import { createHash, createPrivateKey, createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto'

export type AsymmetricAlgorithm = 'EdDSA' | 'ES256'

export interface PublicJwk extends JsonWebKey {
  kid: string
  use: 'sig'
  alg: AsymmetricAlgorithm
}

export interface SigningKeys {
  algorithm: AsymmetricAlgorithm
  /** Signs new tokens; its kid goes in every token header. */
  signing: { kid: string, privateKey: KeyObject, publicKey: KeyObject }
  /** Every key a token may be signed with: the signing key and the ones being rotated out. */
  verification: Map<string, KeyObject>
  /** What GET /.well-known/jwks.json publishes. */
  jwks: { keys: PublicJwk[] }
}

const KEY_TYPE: Record<AsymmetricAlgorithm, { type: string, curve?: string }> = {
  EdDSA: { type: 'ed25519' },
  ES256: { type: 'ec', curve: 'prime256v1' }
}

/** RFC 7638 thumbprint: the kid is derived from the key itself, so it cannot be mislabelled. */
function thumbprint (jwk: JsonWebKey): string {
  const members = jwk.kty === 'OKP' ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x } : { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }
  return createHash('sha256').update(JSON.stringify(members)).digest('base64url')
}

function assertFits (key: KeyObject, algorithm: AsymmetricAlgorithm, what: string): void {
  const want = KEY_TYPE[algorithm]
  if (key.asymmetricKeyType !== want.type || (want.curve !== undefined && key.asymmetricKeyDetails?.namedCurve !== want.curve)) {
    throw new Error(`${what} is not a key for ${algorithm} (${algorithm === 'EdDSA' ? 'Ed25519' : 'P-256'})`)
  }
}

/** Splits a text holding several PEM blocks, as one environment variable can. */
export function splitPem (text: string): string[] {
  return text.match(/-----BEGIN [A-Z ]+-----[\s\S]+?-----END [A-Z ]+-----/g) ?? []
}

/**
 * Loads the signing key and any older public keys still accepted during a rotation. Throws an
 * Error naming what is wrong when a key does not parse or does not fit the algorithm.
 */
export function loadSigningKeys (algorithm: AsymmetricAlgorithm, privatePem: string, previousPublicPems: string[]): SigningKeys {
  const privateKey = createPrivateKey(privatePem)
  assertFits(privateKey, algorithm, 'JWT_PRIVATE_KEY')
  const publicKey = createPublicKey(privateKey)
  const keys = [publicKey, ...previousPublicPems.map((pem) => createPublicKey(pem))]
  const verification = new Map<string, KeyObject>()
  const jwks: PublicJwk[] = []
  for (const key of keys) {
    assertFits(key, algorithm, 'a JWT_PUBLIC_KEYS entry')
    const jwk = key.export({ format: 'jwk' })
    const kid = thumbprint(jwk)
    if (verification.has(kid)) continue
    verification.set(kid, key)
    jwks.push({ ...jwk, kid, use: 'sig', alg: algorithm })
  }
  return { algorithm, signing: { kid: thumbprint(publicKey.export({ format: 'jwk' })), privateKey, publicKey }, verification, jwks: { keys: jwks } }
}
