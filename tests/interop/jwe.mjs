// JWE glue for the interop wallet: oid4vc-ts 0.4.6 has no JWE for credential requests and
// responses (OID4VCI 1.0 §10), so this wraps the `fetch` callback it is given. The JOSE work is
// done by the npm `jose` package; nothing here is taken from oid4vc-ts or from the library
// under test.
//
// For a POST of JSON to the credential (or deferred credential) endpoint the wrapper
//   - adds `credential_response_encryption` {jwk (fresh ECDH-ES P-256 key with `alg`), enc, zip?}
//     when the issuer offers response encryption (OID4VCI 1.0 §8.2, §10),
//   - sends the request as a compact JWE to the issuer's key from
//     `credential_request_encryption.jwks` with `Content-Type: application/jwt` (header `alg` =
//     the key's `alg`, `kid`, `enc` from `enc_values_supported`, `zip` only if listed),
//   - decrypts a 200/202 `application/jwt` answer with the fresh key (checking `alg`/`enc`/`zip`
//     are what was asked) and hands oid4vc-ts the JSON as `application/json`; an unencrypted
//     200/202 to a request that asked for encryption is refused (§10: SHOULD reject).
// Error answers stay plain JSON (OID4VCI 1.0 §8.3.1) and pass through untouched.

import { CompactEncrypt, compactDecrypt, decodeProtectedHeader, exportJWK, generateKeyPair, importJWK } from 'jose'

const JWT = 'application/jwt'
const JSON_TYPE = 'application/json'

function mediaType(headers) {
  return (headers.get('content-type') ?? '').split(';', 1)[0].trim().toLowerCase()
}

/**
 * What to encrypt, from the Credential Issuer metadata, or null when it offers no encryption.
 * `mode`: 'auto' (encrypt whatever the issuer offers), 'off' (send plain JSON) or
 * 'request-only' (an encrypted request without `credential_response_encryption`); the last two
 * and `requestEnc` / `responseEnc` (other `enc` values) are negative cases.
 */
export function encryptionPlan(credentialIssuer, { mode = 'auto', requestEnc, responseEnc } = {}) {
  if (mode === 'off') return null
  const req = credentialIssuer.credential_request_encryption
  const res = credentialIssuer.credential_response_encryption
  if (!req && !res) return null
  const plan = { request: null, response: null }
  if (req) {
    // The 1.0 example writes `jwks` as a bare array; the errata has {"keys": [...]}.
    const keys = Array.isArray(req.jwks) ? req.jwks : (req.jwks?.keys ?? [])
    const key = keys.find((k) => k.kty === 'EC' && typeof k.alg === 'string' && k.alg.startsWith('ECDH-ES'))
    if (!key) throw new Error('credential_request_encryption has no ECDH-ES key')
    plan.request = {
      key,
      enc: requestEnc ?? req.enc_values_supported[0],
      zip: req.zip_values_supported?.includes('DEF') ? 'DEF' : undefined,
      required: req.encryption_required === true,
    }
  }
  if (res) {
    if (!res.alg_values_supported?.includes('ECDH-ES')) throw new Error('the issuer cannot encrypt to ECDH-ES')
    plan.response = {
      alg: 'ECDH-ES',
      enc: responseEnc ?? res.enc_values_supported[0],
      zip: res.zip_values_supported?.includes('DEF') ? 'DEF' : undefined,
      required: res.encryption_required === true,
    }
  }
  // OID4VCI 1.0 §10: a request that carries `credential_response_encryption` must itself be
  // encrypted, so response encryption is only asked for when the request can be encrypted.
  if ((plan.response && !plan.request) || mode === 'request-only') plan.response = null
  return plan
}

/**
 * A `fetch` that encrypts requests to the `endpoints` (URLs) and decrypts their answers as
 * `plan` says; every exchange is pushed to `exchanges` ({endpoint, status, request_type,
 * response_type, request_header, response_header}) for the test to check.
 */
export function encryptingFetch({ fetchImpl = fetch, plan, endpoints, exchanges }) {
  return async (input, init = {}) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.toString() : input.url
    const headers = new Headers(init.headers)
    if (!plan || (init.method ?? 'GET').toUpperCase() !== 'POST' || !endpoints.includes(url)) {
      return fetchImpl(input, init)
    }
    if (mediaType(headers) !== JSON_TYPE) throw new Error(`expected a JSON body for ${url}`)
    const body = JSON.parse(init.body)
    let responseKey = null
    if (plan.response) {
      const pair = await generateKeyPair('ECDH-ES', { crv: 'P-256', extractable: true })
      const jwk = { ...(await exportJWK(pair.publicKey)), alg: plan.response.alg, use: 'enc' }
      responseKey = pair.privateKey
      body.credential_response_encryption = {
        jwk,
        enc: plan.response.enc,
        ...(plan.response.zip ? { zip: plan.response.zip } : {}),
      }
    }
    const exchange = { endpoint: url, request_type: JSON_TYPE, request_header: null }
    let sent = JSON.stringify(body)
    if (plan.request) {
      const { key, enc, zip } = plan.request
      const header = { alg: key.alg, enc, kid: key.kid, ...(zip ? { zip } : {}) }
      sent = await new CompactEncrypt(new TextEncoder().encode(sent))
        .setProtectedHeader(header)
        .encrypt(await importJWK(key, key.alg))
      headers.set('content-type', JWT)
      exchange.request_type = JWT
      exchange.request_header = header
    }
    const response = await fetchImpl(input, { ...init, headers, body: sent })
    exchange.status = response.status
    exchange.response_type = mediaType(response.headers)
    exchange.response_header = null
    exchanges.push(exchange)
    if (response.status !== 200 && response.status !== 202) return response
    if (exchange.response_type !== JWT) {
      if (responseKey) throw new Error(`asked for an encrypted answer, got ${exchange.response_type} from ${url}`)
      return response
    }
    if (!responseKey) throw new Error(`an encrypted answer that was not asked for from ${url}`)
    const compact = await response.text()
    const header = decodeProtectedHeader(compact)
    if (header.alg !== plan.response.alg || header.enc !== plan.response.enc || header.zip !== plan.response.zip) {
      throw new Error(`the answer is encrypted with ${JSON.stringify(header)}, not as asked`)
    }
    const { plaintext } = await compactDecrypt(compact, responseKey, {
      keyManagementAlgorithms: [plan.response.alg],
      contentEncryptionAlgorithms: [plan.response.enc],
    })
    exchange.response_header = header
    const clear = new Headers(response.headers)
    clear.set('content-type', JSON_TYPE)
    clear.delete('content-length')
    return new Response(plaintext, { status: response.status, statusText: response.statusText, headers: clear })
  }
}
