import { WeakPasswordError } from './errors.js'

/**
 * The most common passwords of 8+ characters in public breach corpora (the shorter ones are
 * already refused by the length rule). NIST SP 800-63B asks for a check against known-bad
 * passwords instead of composition rules; a service that needs more can check a full breach list.
 */
const COMMON_PASSWORDS = new Set([
  '12345678', '123456789', '1234567890', '12345678910', '123123123', '11111111', '00000000', '87654321',
  '88888888', '12341234', '11223344', '123456123', '1q2w3e4r', '1q2w3e4r5t', '1qaz2wsx', 'qwertyui',
  'qwertyuiop', 'qwerty123', 'qwerty1234', '1234qwer', 'q1w2e3r4', 'q1w2e3r4t5', 'zaq12wsx', 'asdfghjk',
  'asdfghjkl', 'zxcvbnm1', 'password', 'password1', 'password12', 'password123', 'password!', 'passw0rd',
  'p@ssw0rd', 'p@ssword', 'pa$$word', 'iloveyou', 'iloveyou1', 'princess', 'princess1', 'sunshine',
  'sunshine1', 'football', 'football1', 'baseball', 'basketball', 'superman', 'batman123', 'starwars',
  'whatever', 'trustno1', 'welcome1', 'welcome123', 'letmein1', 'letmein123', 'changeme', 'changeme1',
  'abcd1234', 'abc12345', 'abcdefgh', 'abcdefg1', 'aa123456', 'a1234567', 'a12345678', 'admin123',
  'admin1234', 'administrator', 'computer', 'internet', 'jennifer', 'michelle', 'jordan23', 'charlie1',
  'midnight', 'mustang1', 'shadow12', 'master123', 'dragon12', 'monkey123', 'liverpool', 'chelsea1',
  'arsenal1', 'pokemon1', 'minecraft', 'fuckyou1', 'qazwsxedc', 'qweasdzxc', '1qazxsw2', 'zxcvbnm123',
  'iloveu123', 'loveyou1', 'secret123', 'test1234', 'testtest', 'password2', 'summer2024', 'winter2024',
  'spring2024', 'autumn2024', 'summer2025', 'welcome2025', 'gatehouse', 'gatehouse1', 'gatehouse123'
])

/** Refuses a password that is common, or that is the account's own email, its local part or username. */
export function assertAcceptablePassword (password: string, account: { email: string, username: string }): void {
  const candidate = password.toLowerCase()
  const email = account.email.toLowerCase()
  const personal = [email, email.slice(0, email.indexOf('@')), account.username.toLowerCase()]
  if (COMMON_PASSWORDS.has(candidate) || personal.includes(candidate)) throw new WeakPasswordError()
}
