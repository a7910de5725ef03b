// HAIP glue for issuer.mjs: what oid4vc-ts 0.4.6 leaves to its user in HAIP mode.
//
// - X.509: `x5c` chains of wallet and key attestations validated to the wallet provider's roots
//   with node:crypto `X509Certificate` (oid4vc-ts hands x5c signers to the verifyJwt callback);
//   the credential signing key and its chain loaded from files the test wrote.
// - JWE (OID4VCI 1.0 §10): oid4vc-ts has no JWE, so encrypted credential requests are opened and
//   responses sealed here with npm `jose`.
// Written for this harness; nothing here is taken from oid4vc-ts.

import { readFileSync } from 'node:fs'
import { X509Certificate, webcrypto } from 'node:crypto'

import { CompactEncrypt, compactDecrypt, decodeProtectedHeader, exportJWK, generateKeyPair, importJWK } from 'jose'

import { verifyEs256Jws } from './common.mjs'

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g

/** The certificates of a PEM file, in file order. */
export function readPemCertificates(path) {
  const blocks = readFileSync(path, 'utf8').match(PEM_BLOCK) ?? []
  if (blocks.length === 0) throw new Error(`${path} holds no PEM certificate`)
  return blocks.map((pem) => new X509Certificate(pem))
}

/** An `x5c` header value (standard base64 DER, leaf first). */
export function x5cOf(certificates) {
  return certificates.map((certificate) => certificate.raw.toString('base64'))
}

export function leafJwk(x5c) {
  const { kty, crv, x, y } = new X509Certificate(Buffer.from(x5c[0], 'base64')).publicKey.export({ format: 'jwk' })
  return { kty, crv, x, y }
}

/**
 * Validate an `x5c` chain to one of `roots` (each certificate in its validity period and signed
 * by the next, the last one signed by a root; the leaf not self-signed, HAIP 1.0 §4.5.1).
 * Returns the leaf's public JWK; throws with a reason otherwise.
 */
export function verifyX5cChain(x5c, roots) {
  if (!Array.isArray(x5c) || x5c.length === 0 || x5c.length > 10) throw new Error('x5c must be a non-empty array')
  const chain = x5c.map((entry) => new X509Certificate(Buffer.from(entry, 'base64')))
  if (chain[0].subject === chain[0].issuer) throw new Error('the x5c signer certificate is self-signed')
  const now = Date.now()
  for (const certificate of chain) {
    if (Date.parse(certificate.validFrom) > now || Date.parse(certificate.validTo) < now) {
      throw new Error('an x5c certificate is outside its validity period')
    }
  }
  for (let i = 0; i + 1 < chain.length; i++) {
    if (!chain[i + 1].ca) throw new Error('an x5c issuer certificate is not a CA')
    if (!chain[i].checkIssued(chain[i + 1]) || !chain[i].verify(chain[i + 1].publicKey)) {
      throw new Error('the x5c chain is broken')
    }
  }
  const top = chain[chain.length - 1]
  if (!roots.some((root) => top.checkIssued(root) && top.verify(root.publicKey))) {
    throw new Error('the x5c chain does not end at a trusted root')
  }
  return leafJwk(x5c)
}

/**
 * A verifyJwt callback for oid4vc-ts: `x5c` signers (wallet attestations, key attestations) are
 * validated to `roots` and checked with the leaf key; other signers go to `base`.
 */
export function x5cAwareVerifyJwt(base, roots) {
  return async (signer, jwt) => {
    if (signer.method !== 'x5c') return base(signer, jwt)
    try {
      const jwk = verifyX5cChain(signer.x5c, roots)
      await verifyEs256Jws(jwt.compact, jwk)
      return { verified: true, signerJwk: jwk }
    } catch (error) {
      process.stderr.write(`  x5c signer refused: ${error.message}\n`)
      return { verified: false }
    }
  }
}

/** The ES256 private key of a JWK file (the credential signer the test made). */
export async function readSigningKey(path) {
  const jwk = JSON.parse(readFileSync(path, 'utf8'))
  const { kty, crv, x, y, d } = jwk
  return webcrypto.subtle.importKey('jwk', { kty, crv, x, y, d }, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign'])
}

// --------------------------------------------------------------------------------------------
// JWE (OID4VCI 1.0 §10), with npm jose

export const REQUEST_ALG = 'ECDH-ES'
export const ENCS = ['A128GCM', 'A256GCM']
export const RESPONSE_ALGS = ['ECDH-ES']
const MAX_PLAINTEXT = 1024 * 1024

/** A fresh P-256 key for encrypted credential requests: `{ privateKey, publicJwk }`. */
export async function generateRequestEncryptionKey(kid) {
  const { privateKey, publicKey } = await generateKeyPair(REQUEST_ALG, { crv: 'P-256' })
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: REQUEST_ALG, use: 'enc' }
  return { privateKey, publicJwk }
}

/**
 * Decrypt a compact JWE credential request to its JSON object. Throws `{ code, message }` with
 * `invalid_encryption_parameters` for a JWE it cannot or may not open.
 */
export async function openRequest(compact, key) {
  let header
  try {
    header = decodeProtectedHeader(compact)
  } catch {
    throw { code: 'invalid_encryption_parameters', message: 'the request is not a compact JWE' }
  }
  if (header.alg !== REQUEST_ALG || !ENCS.includes(header.enc) || (header.kid && header.kid !== key.publicJwk.kid)) {
    throw { code: 'invalid_encryption_parameters', message: 'unsupported alg, enc or kid in the request JWE' }
  }
  try {
    const { plaintext } = await compactDecrypt(compact, key.privateKey, {
      keyManagementAlgorithms: [REQUEST_ALG],
      contentEncryptionAlgorithms: ENCS,
      maxDecompressedLength: MAX_PLAINTEXT,
    })
    const value = JSON.parse(Buffer.from(plaintext).toString('utf8'))
    if (!value || typeof value !== 'object' || Array.isArray(value)) throw new Error('not an object')
    return value
  } catch {
    throw { code: 'invalid_encryption_parameters', message: 'the request JWE does not decrypt to a JSON object' }
  }
}

/**
 * Check a request's `credential_response_encryption` (1.0: `{jwk (with alg), enc, zip?}`; the
 * Draft 15 `alg` member is accepted too). Returns `{ jwk, alg, enc, zip }`.
 */
export function readResponseEncryption(member) {
  const bad = (message) => ({ code: 'invalid_encryption_parameters', message })
  if (!member || typeof member !== 'object' || Array.isArray(member)) throw bad('credential_response_encryption is required')
  const { jwk, enc, zip } = member
  const alg = jwk?.alg ?? member.alg
  if (!jwk || typeof jwk !== 'object' || jwk.kty !== 'EC' || 'd' in jwk) throw bad('credential_response_encryption.jwk must be a public EC key')
  if (!RESPONSE_ALGS.includes(alg)) throw bad('unsupported response encryption alg')
  if (!ENCS.includes(enc)) throw bad('unsupported response encryption enc')
  if (zip !== undefined && zip !== 'DEF') throw bad('unsupported response encryption zip')
  return { jwk, alg, enc, zip }
}

/** The JSON `body` as a compact JWE to the wallet's key (with `zip` when it asked for it). */
export async function sealResponse(body, { jwk, alg, enc, zip }) {
  const key = await importJWK({ kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y }, alg)
  const header = { alg, enc, ...(jwk.kid ? { kid: jwk.kid } : {}), ...(zip ? { zip } : {}) }
  return new CompactEncrypt(new TextEncoder().encode(JSON.stringify(body))).setProtectedHeader(header).encrypt(key)
}
