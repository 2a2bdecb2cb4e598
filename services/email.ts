import { InvalidEmailError } from './errors.js'

// The WHATWG HTML "valid e-mail address" grammar: what browsers accept in <input type=email>.
const EMAIL = /^[a-z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$/

/** Trims and lower-cases an address, then checks it; the normalised form is what is stored and compared. */
export function normalizeEmail (raw: string): string {
  const email = raw.trim().toLowerCase()
  const local = email.slice(0, email.indexOf('@'))
  if (email.length > 254 || local.length > 64 || !EMAIL.test(email)) throw new InvalidEmailError()
  return email
}
