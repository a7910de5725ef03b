// Shared helpers for the interop scripts: ES256 keys, JWS and SD-JWT VC handling on Node's
// webcrypto, and the callback context that oid4vc-ts (@openid4vc/*) asks its users to supply.
// Written for this harness; nothing here is taken from oid4vc-ts.

import { webcrypto } from 'node:crypto'

const { subtle } = webcrypto

const HASHES = { 'sha-256': 'SHA-256', 'sha-384': 'SHA-384', 'sha-512': 'SHA-512' }
const ES256 = { name: 'ECDSA', namedCurve: 'P-256' }

export const textEncoder = new TextEncoder()

export function b64u(data) {
  return Buffer.from(typeof data === 'string' ? textEncoder.encode(data) : data).toString('base64url')
}

export function b64uJson(value) {
  return b64u(JSON.stringify(value))
}

export function fromB64u(text) {
  return new Uint8Array(Buffer.from(text, 'base64url'))
}

export function randomBytes(length) {
  return webcrypto.getRandomValues(new Uint8Array(length))
}

export function randomToken(length = 32) {
  return b64u(randomBytes(length))
}

export async function sha256(data) {
  const bytes = typeof data === 'string' ? textEncoder.encode(data) : data
  return new Uint8Array(await subtle.digest('SHA-256', bytes))
}

/** RFC 7638 thumbprint (base64url SHA-256) of an EC or RSA public JWK. */
export async function jwkThumbprint(jwk) {
  let members
  if (jwk.kty === 'EC') members = { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }
  else if (jwk.kty === 'OKP') members = { crv: jwk.crv, kty: jwk.kty, x: jwk.x }
  else if (jwk.kty === 'RSA') members = { e: jwk.e, kty: jwk.kty, n: jwk.n }
  else throw new Error(`unsupported kty ${jwk.kty}`)
  return b64u(await sha256(JSON.stringify(members)))
}

export function publicOnly(jwk) {
  const { kty, crv, x, y } = jwk
  return { kty, crv, x, y }
}

/** A fresh ES256 key pair: `{ privateKey, publicJwk, thumbprint }`. */
export async function generateEs256Key(kid) {
  const pair = await subtle.generateKey(ES256, true, ['sign', 'verify'])
  const publicJwk = publicOnly(await subtle.exportKey('jwk', pair.publicKey))
  if (kid) publicJwk.kid = kid
  return { privateKey: pair.privateKey, publicJwk, thumbprint: await jwkThumbprint(publicJwk) }
}

export async function signJws(privateKey, header, payload) {
  const signingInput = `${b64uJson(header)}.${b64uJson(payload)}`
  const signature = await subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, privateKey, textEncoder.encode(signingInput))
  return `${signingInput}.${b64u(new Uint8Array(signature))}`
}

export function decodeJws(compact) {
  const parts = compact.split('.')
  if (parts.length !== 3) throw new Error('not a compact JWS')
  return {
    header: JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8')),
    payload: JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')),
    signingInput: `${parts[0]}.${parts[1]}`,
    signature: fromB64u(parts[2]),
  }
}

/** Verify an ES256 compact JWS with a public JWK; returns the decoded JWS or throws. */
export async function verifyEs256Jws(compact, jwk) {
  const decoded = decodeJws(compact)
  if (decoded.header.alg !== 'ES256') throw new Error(`unexpected alg ${decoded.header.alg}`)
  if (jwk.kty !== 'EC' || jwk.crv !== 'P-256') throw new Error('verification key is not a P-256 EC key')
  if ('d' in jwk) throw new Error('verification key has private members')
  const key = await subtle.importKey('jwk', publicOnly(jwk), ES256, false, ['verify'])
  const ok = await subtle.verify(
    { name: 'ECDSA', hash: 'SHA-256' },
    key,
    decoded.signature,
    textEncoder.encode(decoded.signingInput),
  )
  if (!ok) throw new Error('signature does not verify')
  return decoded
}

/**
 * The callback context oid4vc-ts needs (hash, random, JWT sign/verify, client authentication,
 * fetch). `keyring` maps JWK thumbprints to private keys for `signJwt`.
 */
export function makeCallbacks({ keyring, clientAuthentication, fetchImpl }) {
  return {
    fetch: fetchImpl ?? fetch,
    hash: async (data, alg) => {
      const name = HASHES[alg]
      if (!name) throw new Error(`unsupported hash ${alg}`)
      return new Uint8Array(await subtle.digest(name, data))
    },
    generateRandom: (length) => randomBytes(length),
    signJwt: async (signer, { header, payload }) => {
      if (!signer.publicJwk) throw new Error(`signer method ${signer.method} is not supported here`)
      const key = keyring.get(await jwkThumbprint(signer.publicJwk))
      if (!key) throw new Error('no private key for this signer')
      if (header.alg !== 'ES256') throw new Error(`unsupported alg ${header.alg}`)
      return { jwt: await signJws(key, header, payload), signerJwk: signer.publicJwk }
    },
    verifyJwt: async (signer, { compact }) => {
      if (signer.method !== 'jwk' || !signer.publicJwk) return { verified: false }
      try {
        await verifyEs256Jws(compact, signer.publicJwk)
        return { verified: true, signerJwk: signer.publicJwk }
      } catch {
        return { verified: false, signerJwk: signer.publicJwk }
      }
    },
    decryptJwe: async () => {
      throw new Error('JWE is not used in this harness')
    },
    encryptJwe: async () => {
      throw new Error('JWE is not used in this harness')
    },
    clientAuthentication: clientAuthentication ?? (() => {}),
  }
}

// ---------------------------------------------------------------------------------------------
// SD-JWT (RFC 9901) pieces used by both scripts.

/** A disclosure for an object member (`[salt, name, value]`) or array element (`[salt, value]`). */
export async function makeDisclosure(...content) {
  const encoded = b64uJson([randomToken(16), ...content])
  return { encoded, digest: b64u(await sha256(encoded)) }
}

/**
 * Verify an SD-JWT VC the way an independent holder would: issuer signature with the key that
 * `kid` names in `jwks`, each disclosure's digest present exactly once, claims rebuilt.
 * Returns `{ header, payload, claims, disclosures }`; throws with a reason on any failure.
 */
export async function verifySdJwtVc(text, { jwks }) {
  if (!text.endsWith('~')) throw new Error('SD-JWT must end with "~" (no key binding JWT expected)')
  const [jwt, ...rest] = text.split('~')
  const encodedDisclosures = rest.slice(0, -1)
  const { header } = decodeJws(jwt)
  const candidates = jwks.keys.filter((k) => !header.kid || k.kid === header.kid)
  if (candidates.length === 0) throw new Error(`no issuer key with kid ${header.kid}`)
  let decoded
  let lastError
  for (const key of candidates) {
    try {
      decoded = await verifyEs256Jws(jwt, key)
      break
    } catch (error) {
      lastError = error
    }
  }
  if (!decoded) throw new Error(`issuer signature: ${lastError?.message}`)
  const { payload } = decoded
  if ((payload._sd_alg ?? 'sha-256') !== 'sha-256') throw new Error(`unsupported _sd_alg ${payload._sd_alg}`)
  const byDigest = new Map()
  for (const encoded of encodedDisclosures) {
    const digest = b64u(await sha256(encoded))
    if (byDigest.has(digest)) throw new Error('duplicate disclosure')
    const content = JSON.parse(Buffer.from(encoded, 'base64url').toString('utf8'))
    if (!Array.isArray(content) || (content.length !== 2 && content.length !== 3)) {
      throw new Error('malformed disclosure')
    }
    byDigest.set(digest, content)
  }
  const used = new Set()
  const take = (digest) => {
    if (used.has(digest)) throw new Error('digest referenced twice')
    const content = byDigest.get(digest)
    if (content) used.add(digest)
    return content
  }
  const rebuild = (value) => {
    if (Array.isArray(value)) {
      const out = []
      for (const item of value) {
        if (item && typeof item === 'object' && !Array.isArray(item) && Object.keys(item).length === 1 && '...' in item) {
          const content = take(item['...'])
          if (content) {
            if (content.length !== 2) throw new Error('array disclosure must have 2 elements')
            out.push(rebuild(content[1]))
          }
        } else {
          out.push(rebuild(item))
        }
      }
      return out
    }
    if (value && typeof value === 'object') {
      const out = {}
      for (const [name, member] of Object.entries(value)) {
        if (name === '_sd' || name === '_sd_alg') continue
        out[name] = rebuild(member)
      }
      for (const digest of value._sd ?? []) {
        const content = take(digest)
        if (!content) continue
        if (content.length !== 3) throw new Error('object disclosure must have 3 elements')
        const [, name, member] = content
        if (name in out || name === '_sd' || name === '...') throw new Error(`disclosed name ${name} clashes`)
        out[name] = rebuild(member)
      }
      return out
    }
    return value
  }
  const claims = rebuild(payload)
  if (used.size !== byDigest.size) throw new Error('a disclosure is not referenced by any digest')
  return { header, payload, claims, disclosures: encodedDisclosures.length }
}

/** RFC 8414 style: insert `/.well-known/<suffix>` between the origin and the path of `url`. */
export function insertWellKnown(url, suffix) {
  const parsed = new URL(url)
  const path = parsed.pathname === '/' ? '' : parsed.pathname.replace(/\/$/, '')
  return `${parsed.origin}/.well-known/${suffix}${path}`
}
