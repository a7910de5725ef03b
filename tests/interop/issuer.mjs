#!/usr/bin/env node
// Interop issuer: a small OID4VCI credential issuer + authorization server on 127.0.0.1 built
// from oid4vc-ts (@openid4vc/openid4vci `Openid4vciIssuer`, @openid4vc/oauth2
// `Oauth2AuthorizationServer` / `Oauth2ResourceServer`). The library leaves credential minting
// to its user: SD-JWT VCs are built here with Node's webcrypto.
//
//   node issuer.mjs [--port 0] [--metadata v1|draft15] [--require-dpop-nonce] [--allow-bearer]
//                   [--max-seconds 300]
//                   [--haip --trust-attester ROOTS.pem --credential-key KEY.jwk --credential-chain CHAIN.pem]
//
// --haip (OpenID4VC HAIP 1.0): wallet attestation (attest_jwt_client_auth) required and verified
// at PAR and token with oid4vc-ts (x5c chains to ROOTS.pem checked in the verifyJwt callback with
// node:crypto, PoP iat/jti here), DPoP and PAR required, refresh tokens, key attestations required
// in jwt proofs (verified by oid4vc-ts's verifyCredentialRequestJwtProof through the same
// callback, levels and nonce here), SD-JWT VCs signed by KEY.jwk with CHAIN.pem as x5c, and
// encrypted credential requests and responses (OID4VCI 1.0 §10; JWE in haip.mjs with npm jose,
// as oid4vc-ts has no JWE).
//
// When ready it prints one JSON line:
//   {"issuer": URL, "offers": {"pre_auth": URI, "pre_auth_tx_code": URI, "auth_code": URI,
//    "pre_auth_deferred": URI}, "tx_code": CODE, "mint": {"pre_auth": URL, ...}, "vct": VCT,
//    "configuration_id": ID, "haip": BOOL}
// pre_auth_deferred offers defer the credentials (fetched at the Deferred Credential Endpoint
// after a 3 s interval) and give an access token of 2 s; in HAIP mode a refresh token comes with
// every token, so a wallet must refresh to fetch them. GET /_events counts refreshes.
// Offer URIs are by reference and reusable: every fetch mints a fresh single-use offer. A GET on
// a "mint" URL answers a fresh offer URI by value (text/plain). The authorization endpoint
// approves every valid request at once (no login page) for the subject "interop-user".

import http from 'node:http'
import { parseArgs } from 'node:util'

import {
  Oauth2AuthorizationServer,
  Oauth2ErrorCodes,
  Oauth2ResourceServer,
  Oauth2ResourceUnauthorizedError,
  Oauth2ServerErrorResponseError,
  authorizationCodeGrantIdentifier,
  decodeJwt,
  preAuthorizedCodeGrantIdentifier,
  pushedAuthorizationRequestUriPrefix,
  refreshTokenGrantIdentifier,
} from '@openid4vc/oauth2'
import { Openid4vciIssuer, Openid4vciVersion, getCredentialConfigurationsMatchingRequestFormat } from '@openid4vc/openid4vci'
import { setGlobalConfig } from '@openid4vc/utils'

import { generateEs256Key, jwkThumbprint, makeCallbacks, makeDisclosure, randomToken, signJws } from './common.mjs'
import {
  ENCS,
  RESPONSE_ALGS,
  generateRequestEncryptionKey,
  openRequest,
  readPemCertificates,
  readResponseEncryption,
  readSigningKey,
  sealResponse,
  x5cAwareVerifyJwt,
  x5cOf,
} from './haip.mjs'

setGlobalConfig({ allowInsecureUrls: true })

const { values: options } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    metadata: { type: 'string', default: 'v1' },
    'require-dpop-nonce': { type: 'boolean', default: false },
    'allow-bearer': { type: 'boolean', default: false },
    'max-seconds': { type: 'string', default: '300' },
    haip: { type: 'boolean', default: false },
    'trust-attester': { type: 'string' },
    'credential-key': { type: 'string' },
    'credential-chain': { type: 'string' },
  },
})
if (!['v1', 'draft15'].includes(options.metadata)) {
  process.stderr.write('--metadata must be v1 or draft15\n')
  process.exit(2)
}
const HAIP = options.haip
if (HAIP && !(options['trust-attester'] && options['credential-key'] && options['credential-chain'])) {
  process.stderr.write('--haip needs --trust-attester, --credential-key and --credential-chain\n')
  process.exit(2)
}

const CONFIGURATION_ID = 'identity_sd_jwt'
// HAIP mode only: the same credential, proved with the `attestation` proof type (OID4VCI 1.0
// Appendix F.3: the key attestation is the proof, its attested_keys are the holder keys).
const ATTESTED_CONFIGURATION_ID = 'identity_sd_jwt_attestation_proof'
const VCT = 'urn:interop:oid4vc-ts:identity:1'
const SCOPE = 'interop_identity'
const CREDENTIAL_IDENTIFIER = 'identity_sd_jwt:erika'
const TX_CODE = '493536'
const SUBJECT = 'interop-user'
const LIFETIME = { code: 300, token: 600, nonce: 300, par: 90, dpopNonce: 300, refresh: 600 }
// Offers of kind pre_auth_deferred: the credential is deferred and its access token lives this
// short, so the wallet's poll after DEFERRED_INTERVAL finds it expired and must refresh it.
const SHORT_TOKEN_SECONDS = 2
const DEFERRED_INTERVAL = 3
const OFFER_KINDS = ['pre_auth', 'pre_auth_tx_code', 'auth_code', 'pre_auth_deferred', ...(options.haip ? ['pre_auth_attestation_proof'] : [])]
// HAIP 1.0 §4.5.1: key attestations required, at the level our test wallet claims.
const KEY_ATTESTATIONS_REQUIRED = { key_storage: ['iso_18045_high'] }
const ATTESTATION_ALGS = ['ES256']
const SKEW = 300
const DPOP_ALGS = ['ES256']
// Deliberately broken credentials, chosen per offer with `?tamper=MODE` on an offer URL, to check
// that a wallet refuses them: bound to another key, signed by a key not in the JWKS, with a
// disclosure no digest references, a wrong `iss`, `vct` or `typ`, or already expired.
const TAMPER_MODES = ['cnf', 'signature', 'disclosure', 'iss', 'vct', 'typ', 'expired']

const asKey = await generateEs256Key('as-key-1')
const credentialKey = await generateEs256Key('issuer-key-1')
const keyring = new Map([
  [asKey.thumbprint, asKey.privateKey],
  [credentialKey.thumbprint, credentialKey.privateKey],
])
// HAIP trust material, written by the test: the wallet provider roots attestations must chain
// to, and the credential signer (private JWK) with its x5c chain (leaf first, root left out).
const attesterRoots = HAIP ? readPemCertificates(options['trust-attester']) : []
const credentialX5c = HAIP ? x5cOf(readPemCertificates(options['credential-chain'])) : undefined
const x5cSigningKey = HAIP ? await readSigningKey(options['credential-key']) : undefined
const requestEncryptionKey = HAIP ? await generateRequestEncryptionKey('request-enc-1') : undefined

// Single-use or expiring server state. Plain maps: one process, one test.
const preAuthorizedCodes = new Map() // code -> { txCode, tamper, expiresAt }
const authorizationCodes = new Map() // code -> { clientId, redirectUri, codeChallenge, codeChallengeMethod, dpopJkt, expiresAt }
const pushedRequests = new Map() // request_uri -> { request, dpopJkt, expiresAt }
const cNonces = new Map() // nonce -> expiresAt
// DPoP nonces: the authorization server (token, PAR) and the resource server (credential
// endpoint) keep separate pools, so a client must also handle the resource server's
// 401 use_dpop_nonce challenge (RFC 9449 §9) after the token response handed it an AS nonce.
const dpopNonces = { as: new Map(), rs: new Map() } // nonce -> expiresAt
const seenDpopJti = new Map() // jti -> expiresAt
const notifications = new Map() // notification_id -> { subject, expiresAt }
const notificationEvents = [] // what wallets reported, served at GET /_events for the tests
const seenPopJti = new Map() // client attestation PoP jti -> expiresAt
const refreshTokens = new Map() // refresh_token -> { dpopJkt, clientId, byDetails, deferred, grantId, expiresAt }
const deferredTransactions = new Map() // transaction_id -> { grantId, credentials, expiresAt }
const events = { refreshed: 0, deferredPolls: 0 } // counters served at GET /_events

let issuerUrl
let jwksUri
let asMetadata
let credentialIssuerMetadata
let resolvedIssuerMetadata

const now = () => Date.now()
const seconds = () => Math.floor(Date.now() / 1000)

const callbacks = makeCallbacks({
  keyring,
  // The resource server fetches the authorization server's JWKS from `jwks_uri`; it is this
  // process, so answer locally.
  fetchImpl: async (url, init) => {
    if (String(url) === jwksUri) {
      return new Response(JSON.stringify({ keys: [asKey.publicJwk] }), {
        headers: { 'content-type': 'application/json' },
      })
    }
    return fetch(url, init)
  },
})
// HAIP: wallet and key attestations name their signer by x5c; oid4vc-ts hands those to the
// verifyJwt callback, which validates the chain to the wallet provider roots.
if (HAIP) callbacks.verifyJwt = x5cAwareVerifyJwt(callbacks.verifyJwt, attesterRoots)
const authorizationServer = new Oauth2AuthorizationServer({ callbacks })
const resourceServer = new Oauth2ResourceServer({ callbacks })
const issuer = new Openid4vciIssuer({ callbacks })

function serverError(error, description, status = 400, headers) {
  const err = new Oauth2ServerErrorResponseError({ error, error_description: description }, { status })
  err.extraHeaders = headers
  return err
}

function headerSafe(text) {
  return String(text ?? '')
    .replace(/[\r\n\t]+/g, ' ')
    .replace(/[^\x20-\x7e]/g, '')
    .replace(/["\\]/g, "'")
    .slice(0, 300)
}

function unauthorized(scheme, error, description, headers) {
  const err = new Oauth2ResourceUnauthorizedError(description, { scheme, error, error_description: description })
  err.extraHeaders = headers
  return err
}

function requestLike(req) {
  const headers = new Headers()
  for (let i = 0; i < req.rawHeaders.length; i += 2) headers.append(req.rawHeaders[i], req.rawHeaders[i + 1])
  return { method: req.method, url: `${issuerUrl}${req.url}`, headers }
}

async function readBody(req) {
  const chunks = []
  let size = 0
  for await (const chunk of req) {
    size += chunk.length
    if (size > 1024 * 1024) throw serverError(Oauth2ErrorCodes.InvalidRequest, 'request body too large', 413)
    chunks.push(chunk)
  }
  return Buffer.concat(chunks).toString('utf8')
}

function formBody(req, text) {
  if (!(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) {
    throw serverError(Oauth2ErrorCodes.InvalidRequest, 'expected application/x-www-form-urlencoded')
  }
  const params = new URLSearchParams(text)
  const out = {}
  for (const [key, value] of params) {
    if (key in out) throw serverError(Oauth2ErrorCodes.InvalidRequest, `parameter ${key} repeated`)
    out[key] = value
  }
  return out
}

function jsonBody(req, text) {
  if (!(req.headers['content-type'] ?? '').startsWith('application/json')) {
    throw serverError(Oauth2ErrorCodes.InvalidCredentialRequest, 'expected application/json')
  }
  try {
    const value = JSON.parse(text)
    if (!value || typeof value !== 'object' || Array.isArray(value)) throw new Error('not an object')
    return value
  } catch {
    throw serverError(Oauth2ErrorCodes.InvalidCredentialRequest, 'body is not a JSON object')
  }
}

function purge(map) {
  const t = now()
  for (const [key, value] of map) {
    const expiresAt = typeof value === 'number' ? value : value.expiresAt
    if (expiresAt < t) map.delete(key)
  }
}

function newDpopNonce(pool) {
  purge(dpopNonces[pool])
  const nonce = randomToken(16)
  dpopNonces[pool].set(nonce, now() + LIFETIME.dpopNonce * 1000)
  return nonce
}

function dpopFailure(resource, code, description, headers) {
  return resource ? unauthorized('DPoP', code, description, headers) : serverError(code, description, 400, headers)
}

/**
 * With --require-dpop-nonce: the proof must carry a nonce this server handed out (RFC 9449 §8,
 * §9). Checked before anything is spent, so the client can retry with the nonce.
 */
function requireDpopNonce(dpopJwt, { resource }) {
  if (!options['require-dpop-nonce'] || !dpopJwt) return
  let nonce
  try {
    nonce = decodeJwt({ jwt: dpopJwt }).payload.nonce
  } catch {
    throw dpopFailure(resource, Oauth2ErrorCodes.InvalidDpopProof, 'DPoP proof is not a JWT')
  }
  const pool = resource ? 'rs' : 'as'
  const expiresAt = nonce ? dpopNonces[pool].get(nonce) : undefined
  if (!expiresAt || expiresAt < now()) {
    throw dpopFailure(resource, Oauth2ErrorCodes.UseDpopNonce, 'Authorization server requires nonce in DPoP proof', {
      'DPoP-Nonce': newDpopNonce(pool),
    })
  }
}

/**
 * Checks oid4vc-ts leaves to its user for a DPoP proof it has verified: `iat` freshness and
 * `jti` replay (RFC 9449 §4.3, §11.1).
 */
function checkDpopReplay(dpopJwt, { resource }) {
  const { payload } = decodeJwt({ jwt: dpopJwt })
  if (typeof payload.iat !== 'number' || Math.abs(seconds() - payload.iat) > SKEW) {
    throw dpopFailure(resource, Oauth2ErrorCodes.InvalidDpopProof, 'DPoP proof iat is not fresh')
  }
  purge(seenDpopJti)
  const jtiKey = `${payload.htu} ${payload.jti}`
  if (!payload.jti || seenDpopJti.has(jtiKey)) {
    throw dpopFailure(resource, Oauth2ErrorCodes.InvalidDpopProof, 'DPoP proof jti missing or replayed')
  }
  seenDpopJti.set(jtiKey, now() + 2 * SKEW * 1000)
}

/**
 * HAIP: oid4vc-ts has verified the wallet attestation and its PoP (x5c chain, signature, `exp`,
 * `cnf`, PoP `aud` and signature); what it leaves to its user is checked here: PoP `iat`
 * freshness and `jti` replay (draft-ietf-oauth-attestation-based-client-auth-07 §9, §12.1).
 * Returns the authenticated client_id (the attestation's `sub`).
 */
function checkClientAttestation(verified) {
  if (!verified) throw serverError(Oauth2ErrorCodes.InvalidClient, 'wallet attestation required', 401)
  const pop = verified.clientAttestationPop.payload
  if (typeof pop.iat !== 'number' || Math.abs(seconds() - pop.iat) > SKEW) {
    throw serverError(Oauth2ErrorCodes.InvalidClient, 'client attestation PoP iat is not fresh', 401)
  }
  purge(seenPopJti)
  if (seenPopJti.has(pop.jti)) throw serverError(Oauth2ErrorCodes.InvalidClient, 'client attestation PoP jti replayed', 401)
  seenPopJti.set(pop.jti, now() + 2 * SKEW * 1000)
  return verified.clientAttestation.payload.sub
}

function attestationOptions(parsed, expectedClientId) {
  return HAIP ? { required: true, ...parsed.clientAttestation, expectedClientId } : undefined
}

function buildMetadata() {
  const claims = [
    { path: ['given_name'], mandatory: true, display: [{ name: 'Given name', locale: 'en' }] },
    { path: ['family_name'], mandatory: true, display: [{ name: 'Family name', locale: 'en' }] },
    { path: ['email'], display: [{ name: 'Email', locale: 'en' }] },
    { path: ['address', 'street_address'], display: [{ name: 'Street', locale: 'en' }] },
    { path: ['address', 'locality'], display: [{ name: 'City', locale: 'en' }] },
    { path: ['address', 'country'], display: [{ name: 'Country', locale: 'en' }] },
    { path: ['nationalities', null], display: [{ name: 'Nationalities', locale: 'en' }] },
  ]
  const display = [{ name: 'Interop identity', locale: 'en', background_color: '#12107c', text_color: '#ffffff' }]
  const configuration = {
    format: 'dc+sd-jwt',
    vct: VCT,
    scope: SCOPE,
    cryptographic_binding_methods_supported: ['jwk'],
    credential_signing_alg_values_supported: ['ES256'],
    proof_types_supported: {
      jwt: {
        proof_signing_alg_values_supported: ['ES256'],
        ...(HAIP ? { key_attestations_required: KEY_ATTESTATIONS_REQUIRED } : {}),
      },
    },
    ...(options.metadata === 'v1' ? { credential_metadata: { display, claims } } : { display, claims }),
  }
  // OID4VCI 1.0 §12.2.4: encrypted requests and responses, both required in HAIP mode.
  const encryption = HAIP
    ? {
        credential_request_encryption: {
          jwks: { keys: [requestEncryptionKey.publicJwk] },
          enc_values_supported: ENCS,
          zip_values_supported: ['DEF'],
          encryption_required: true,
        },
        credential_response_encryption: {
          alg_values_supported: RESPONSE_ALGS,
          enc_values_supported: ENCS,
          zip_values_supported: ['DEF'],
          encryption_required: true,
        },
      }
    : {}
  credentialIssuerMetadata = issuer.createCredentialIssuerMetadata({
    credential_issuer: issuerUrl,
    credential_endpoint: `${issuerUrl}/credential`,
    deferred_credential_endpoint: `${issuerUrl}/deferred_credential`,
    nonce_endpoint: `${issuerUrl}/nonce`,
    ...encryption,
    notification_endpoint: `${issuerUrl}/notification`,
    batch_credential_issuance: { batch_size: 5 },
    display: [{ name: 'oid4vc-ts interop issuer', locale: 'en' }],
    credential_configurations_supported: {
      [CONFIGURATION_ID]: configuration,
      ...(HAIP
        ? {
            [ATTESTED_CONFIGURATION_ID]: {
              ...configuration,
              proof_types_supported: {
                attestation: { proof_signing_alg_values_supported: ['ES256'], key_attestations_required: KEY_ATTESTATIONS_REQUIRED },
              },
            },
          }
        : {}),
    },
  })
  jwksUri = `${issuerUrl}/jwks`
  asMetadata = authorizationServer.createAuthorizationServerMetadata({
    issuer: issuerUrl,
    token_endpoint: `${issuerUrl}/token`,
    authorization_endpoint: `${issuerUrl}/authorize`,
    pushed_authorization_request_endpoint: `${issuerUrl}/par`,
    jwks_uri: jwksUri,
    grant_types_supported: [
      authorizationCodeGrantIdentifier,
      preAuthorizedCodeGrantIdentifier,
      ...(HAIP ? [refreshTokenGrantIdentifier] : []),
    ],
    response_types_supported: ['code'],
    code_challenge_methods_supported: ['S256'],
    dpop_signing_alg_values_supported: DPOP_ALGS,
    ...(HAIP
      ? {
          token_endpoint_auth_methods_supported: ['attest_jwt_client_auth'],
          client_attestation_signing_alg_values_supported: ATTESTATION_ALGS,
          client_attestation_pop_signing_alg_values_supported: ATTESTATION_ALGS,
          require_pushed_authorization_requests: true,
        }
      : { token_endpoint_auth_methods_supported: ['none'] }),
    'pre-authorized_grant_anonymous_access_supported': !HAIP,
    authorization_response_iss_parameter_supported: true,
    authorization_details_types_supported: ['openid_credential'],
    scopes_supported: [SCOPE],
  })
  resolvedIssuerMetadata = {
    credentialIssuer: credentialIssuerMetadata,
    authorizationServers: [asMetadata],
    knownCredentialConfigurations: issuer.getKnownCredentialConfigurationsSupported(credentialIssuerMetadata),
    originalDraftVersion: options.metadata === 'v1' ? Openid4vciVersion.V1 : Openid4vciVersion.Draft15,
  }
}

async function mintOffer(kind, byReference, tamper) {
  const grants = {}
  if (kind === 'auth_code') {
    grants[authorizationCodeGrantIdentifier] = { issuer_state: randomToken(16) }
  } else {
    const code = randomToken(32)
    const withTxCode = kind === 'pre_auth_tx_code'
    preAuthorizedCodes.set(code, {
      txCode: withTxCode ? TX_CODE : undefined,
      tamper,
      deferred: kind === 'pre_auth_deferred',
      expiresAt: now() + LIFETIME.code * 1000,
    })
    grants[preAuthorizedCodeGrantIdentifier] = {
      'pre-authorized_code': code,
      ...(withTxCode ? { tx_code: { input_mode: 'numeric', length: TX_CODE.length, description: 'PIN' } } : {}),
    }
  }
  const { credentialOffer, credentialOfferObject } = await issuer.createCredentialOffer({
    issuerMetadata: resolvedIssuerMetadata,
    credentialConfigurationIds: [kind === 'pre_auth_attestation_proof' ? ATTESTED_CONFIGURATION_ID : CONFIGURATION_ID],
    grants,
  })
  return byReference ? credentialOfferObject : credentialOffer
}

async function mintSdJwtVc(holderJwk, tamper) {
  const sd = async (name, value) => makeDisclosure(name, value)
  const street = await sd('street_address', 'Schulstr. 12')
  const locality = await sd('locality', 'Schulpforta')
  const address = await makeDisclosure('address', {
    _sd: [street.digest, locality.digest].sort(),
    country: 'DE',
  })
  const givenName = await sd('given_name', 'Erika')
  const familyName = await sd('family_name', 'Mustermann')
  const email = await sd('email', 'erika@example.com')
  const nationalityDe = await makeDisclosure('DE')
  const iat = tamper === 'expired' ? seconds() - 7200 : seconds()
  const otherKey = tamper === 'cnf' || tamper === 'signature' ? await generateEs256Key('issuer-key-1') : undefined
  const payload = {
    iss: tamper === 'iss' ? `${issuerUrl}/someone-else` : issuerUrl,
    iat,
    nbf: iat,
    exp: tamper === 'expired' ? iat + 3600 : iat + 365 * 24 * 3600,
    vct: tamper === 'vct' ? `${VCT}:other` : VCT,
    cnf: { jwk: tamper === 'cnf' ? otherKey.publicJwk : holderJwk },
    _sd_alg: 'sha-256',
    _sd: [givenName.digest, familyName.digest, email.digest, address.digest].sort(),
    nationalities: [{ '...': nationalityDe.digest }, 'FR'],
    issuing_country: 'DE',
  }
  const typ = tamper === 'typ' ? 'JWT' : 'dc+sd-jwt'
  // HAIP 1.0 §6.1.1: the issuer key travels as an x5c chain (no kid).
  const header = HAIP ? { alg: 'ES256', typ, x5c: credentialX5c } : { alg: 'ES256', typ, kid: credentialKey.publicJwk.kid }
  const signingKey = HAIP ? x5cSigningKey : credentialKey.privateKey
  const jwt = await signJws(tamper === 'signature' ? otherKey.privateKey : signingKey, header, payload)
  const disclosures = [givenName, familyName, email, street, locality, address, nationalityDe].map((d) => d.encoded)
  if (tamper === 'disclosure') disclosures.push((await makeDisclosure('role', 'admin')).encoded)
  return `${jwt}~${disclosures.join('~')}~`
}

// --------------------------------------------------------------------------------------------
// Endpoints

async function tokenEndpoint(req) {
  const request = requestLike(req)
  const form = formBody(req, await readBody(req))
  const parsed = authorizationServer.parseAccessTokenRequest({ request, accessTokenRequest: form })
  requireDpopNonce(parsed.dpop?.jwt, { resource: false })
  const dpopOptions = { jwt: parsed.dpop?.jwt, required: !options['allow-bearer'], allowedSigningAlgs: DPOP_ALGS }
  let clientId
  if (parsed.grant.grantType === preAuthorizedCodeGrantIdentifier) {
    const entry = preAuthorizedCodes.get(parsed.grant.preAuthorizedCode)
    if (!entry) throw serverError(Oauth2ErrorCodes.InvalidGrant, "Invalid 'pre-authorized_code' provided")
    const verified = await authorizationServer.verifyPreAuthorizedCodeAccessTokenRequest({
      authorizationServerMetadata: asMetadata,
      grant: parsed.grant,
      accessTokenRequest: parsed.accessTokenRequest,
      request,
      expectedPreAuthorizedCode: parsed.grant.preAuthorizedCode,
      expectedTxCode: entry.txCode,
      preAuthorizedCodeExpiresAt: new Date(entry.expiresAt),
      dpop: dpopOptions,
      clientAttestation: attestationOptions(parsed, undefined),
    })
    if (parsed.dpop?.jwt) checkDpopReplay(parsed.dpop.jwt, { resource: false })
    clientId = HAIP ? checkClientAttestation(verified.clientAttestation) : form.client_id
    preAuthorizedCodes.delete(parsed.grant.preAuthorizedCode)
    return issueToken({
      dpopJwk: verified.dpop?.jwk,
      clientId: typeof clientId === 'string' ? clientId : undefined,
      tamper: entry.tamper,
      deferred: entry.deferred,
    })
  }
  if (parsed.grant.grantType === authorizationCodeGrantIdentifier) {
    const entry = authorizationCodes.get(parsed.grant.code)
    // Single use: an authorization code is spent by any attempt (RFC 6749 §4.1.2).
    authorizationCodes.delete(parsed.grant.code)
    if (!entry) throw serverError(Oauth2ErrorCodes.InvalidGrant, "Invalid 'code' provided")
    if (form.client_id !== entry.clientId) throw serverError(Oauth2ErrorCodes.InvalidGrant, 'client_id does not match')
    if (form.redirect_uri !== entry.redirectUri) throw serverError(Oauth2ErrorCodes.InvalidGrant, 'redirect_uri does not match')
    const verified = await authorizationServer.verifyAuthorizationCodeAccessTokenRequest({
      authorizationServerMetadata: asMetadata,
      grant: parsed.grant,
      accessTokenRequest: parsed.accessTokenRequest,
      request,
      expectedCode: parsed.grant.code,
      codeExpiresAt: new Date(entry.expiresAt),
      dpop: { ...dpopOptions, expectedJwkThumbprint: entry.dpopJkt },
      clientAttestation: attestationOptions(parsed, entry.clientId),
      pkce: {
        codeVerifier: parsed.pkceCodeVerifier,
        codeChallenge: entry.codeChallenge,
        codeChallengeMethod: entry.codeChallengeMethod,
      },
    })
    if (!parsed.pkceCodeVerifier) throw serverError(Oauth2ErrorCodes.InvalidGrant, 'code_verifier is required')
    if (parsed.dpop?.jwt) checkDpopReplay(parsed.dpop.jwt, { resource: false })
    if (HAIP) checkClientAttestation(verified.clientAttestation)
    return issueToken({ dpopJwk: verified.dpop?.jwk, clientId: entry.clientId, byDetails: entry.byDetails })
  }
  if (HAIP && parsed.grant.grantType === refreshTokenGrantIdentifier) {
    // RFC 6749 §6 with RFC 9449 §5 (the same DPoP key) and the wallet attestation of the grant.
    const entry = refreshTokens.get(parsed.grant.refreshToken)
    if (!entry) throw serverError(Oauth2ErrorCodes.InvalidGrant, "Invalid 'refresh_token' provided")
    const verified = await authorizationServer.verifyRefreshTokenAccessTokenRequest({
      authorizationServerMetadata: asMetadata,
      grant: parsed.grant,
      accessTokenRequest: parsed.accessTokenRequest,
      request,
      expectedRefreshToken: parsed.grant.refreshToken,
      refreshTokenExpiresAt: new Date(entry.expiresAt),
      dpop: { ...dpopOptions, expectedJwkThumbprint: entry.dpopJkt },
      clientAttestation: attestationOptions(parsed, entry.clientId),
    })
    if (parsed.dpop?.jwt) checkDpopReplay(parsed.dpop.jwt, { resource: false })
    checkClientAttestation(verified.clientAttestation)
    refreshTokens.delete(parsed.grant.refreshToken) // rotated: a new one comes with the answer
    events.refreshed += 1
    return issueToken({ ...entry, dpopJwk: verified.dpop?.jwk })
  }
  throw serverError(Oauth2ErrorCodes.UnsupportedGrantType, 'unsupported grant_type')
}

async function issueToken({ dpopJwk, clientId, byDetails = false, tamper, deferred = false, grantId = randomToken(12) }) {
  // Authorized with RFC 9396 authorization_details: echo them with credential_identifiers
  // (OID4VCI 1.0 §6.2); the wallet must then ask by credential_identifier (§8.2).
  const details = byDetails
    ? [{ type: 'openid_credential', credential_configuration_id: CONFIGURATION_ID, credential_identifiers: [CREDENTIAL_IDENTIFIER] }]
    : undefined
  let refreshToken
  if (HAIP) {
    purge(refreshTokens)
    refreshToken = randomToken(32)
    refreshTokens.set(refreshToken, {
      dpopJkt: dpopJwk ? await jwkThumbprint(dpopJwk) : undefined,
      clientId,
      byDetails,
      deferred,
      grantId,
      expiresAt: now() + LIFETIME.refresh * 1000,
    })
  }
  const response = await authorizationServer.createAccessTokenResponse({
    audience: issuerUrl,
    authorizationServer: issuerUrl,
    expiresInSeconds: deferred ? SHORT_TOKEN_SECONDS : LIFETIME.token,
    subject: SUBJECT,
    clientId,
    scope: SCOPE,
    signer: { method: 'jwk', alg: 'ES256', publicJwk: asKey.publicJwk },
    dpop: dpopJwk ? { jwk: dpopJwk } : undefined,
    refreshToken,
    additionalAccessTokenPayload: {
      ...(details ? { credential_identifiers: [CREDENTIAL_IDENTIFIER] } : {}),
      ...(tamper ? { tamper } : {}),
      ...(deferred ? { deferred } : {}),
      grant_id: grantId,
    },
    additionalAccessTokenResponsePayload: details ? { authorization_details: details } : undefined,
  })
  const headers = options['require-dpop-nonce'] ? { 'DPoP-Nonce': newDpopNonce('as') } : {}
  return { status: 200, body: response, headers }
}

async function nonceEndpoint(req) {
  await readBody(req)
  purge(cNonces)
  const nonce = randomToken(24)
  cNonces.set(nonce, now() + LIFETIME.nonce * 1000)
  return { status: 200, body: issuer.createNonceResponse({ cNonce: nonce, cNonceExpiresIn: LIFETIME.nonce }) }
}

async function verifyAccessToken(request) {
  const verifiedToken = await resourceServer.verifyResourceRequest({
    request,
    resourceServer: issuerUrl,
    authorizationServers: [asMetadata],
    allowedAuthenticationSchemes: options['allow-bearer'] ? undefined : ['DPoP'],
  })
  if (verifiedToken.scheme === 'DPoP') {
    requireDpopNonce(request.headers.get('DPoP'), { resource: true })
    checkDpopReplay(request.headers.get('DPoP'), { resource: true })
  }
  return verifiedToken
}

/**
 * The (deferred) credential request as a JSON object and, in HAIP mode, the response encryption
 * it asks for. HAIP: the body must be a JWE to our request key (OID4VCI 1.0 §10); it is opened
 * here (npm jose) and `credential_response_encryption` is taken out before oid4vc-ts sees the
 * body (oid4vc-ts 0.4.6 validates that member in its Draft 15 shape, `alg` outside the `jwk`).
 */
async function credentialRequestBody(req, text) {
  if (!HAIP) return { body: jsonBody(req, text) }
  if (!(req.headers['content-type'] ?? '').startsWith('application/jwt')) {
    throw serverError('invalid_encryption_parameters', 'credential requests must be encrypted (application/jwt)')
  }
  try {
    const body = await openRequest(text.trim(), requestEncryptionKey)
    const encryption = readResponseEncryption(body.credential_response_encryption)
    delete body.credential_response_encryption
    return { body, encryption }
  } catch (error) {
    if (error instanceof Oauth2ServerErrorResponseError) throw error
    throw serverError(error.code ?? 'invalid_encryption_parameters', error.message ?? 'request encryption failed')
  }
}

/** A 200/202 answer, sealed to the wallet's key when it asked for encryption. */
async function credentialAnswer(status, body, encryption) {
  if (!encryption) return { status, body }
  return { status, text: await sealResponse(body, encryption), contentType: 'application/jwt' }
}

async function credentialEndpoint(req) {
  const request = requestLike(req)
  const text = await readBody(req)
  const verifiedToken = await verifyAccessToken(request)
  const { body, encryption } = await credentialRequestBody(req, text)
  const parsed = issuer.parseCredentialRequest({ issuerMetadata: resolvedIssuerMetadata, credentialRequest: body })
  const grantedIdentifiers = verifiedToken.tokenPayload.credential_identifiers
  let configurationId = parsed.credentialConfigurationId
  if (parsed.credentialIdentifier) {
    if (!Array.isArray(grantedIdentifiers) || !grantedIdentifiers.includes(parsed.credentialIdentifier)) {
      throw serverError(Oauth2ErrorCodes.UnknownCredentialIdentifier, 'unknown credential_identifier')
    }
    configurationId = CONFIGURATION_ID
  } else if (Array.isArray(grantedIdentifiers)) {
    throw serverError(Oauth2ErrorCodes.InvalidCredentialRequest, 'the token names credential_identifiers: use one')
  }
  if (!configurationId && parsed.format) {
    configurationId = Object.keys(
      getCredentialConfigurationsMatchingRequestFormat({
        requestFormat: parsed.format,
        issuerMetadata: resolvedIssuerMetadata,
      }),
    )[0]
  }
  if (configurationId !== CONFIGURATION_ID && !(HAIP && configurationId === ATTESTED_CONFIGURATION_ID)) {
    throw serverError(Oauth2ErrorCodes.UnknownCredentialConfiguration, 'unknown credential configuration')
  }
  if (!(verifiedToken.tokenPayload.scope ?? '').split(' ').includes(SCOPE)) {
    throw serverError(Oauth2ErrorCodes.InvalidCredentialRequest, 'access token does not cover this credential', 403)
  }
  const batchSize = credentialIssuerMetadata.batch_credential_issuance.batch_size
  purge(cNonces)
  const usedNonces = new Set()
  const holderJwks = []
  if (configurationId === ATTESTED_CONFIGURATION_ID) {
    const attestations = parsed.proofs?.attestation
    if (!attestations || attestations.length !== 1) throw serverError(Oauth2ErrorCodes.InvalidProof, 'one attestation proof is required')
    let nonce
    try {
      nonce = decodeJwt({ jwt: attestations[0] }).payload.nonce
    } catch {
      throw serverError(Oauth2ErrorCodes.InvalidProof, 'proof is not a JWT')
    }
    const nonceExpiresAt = nonce ? cNonces.get(nonce) : undefined
    if (!nonceExpiresAt) throw serverError(Oauth2ErrorCodes.InvalidNonce, 'proof nonce is missing or unknown')
    const verified = await issuer.verifyCredentialRequestAttestationProof({
      issuerMetadata: resolvedIssuerMetadata,
      keyAttestationJwt: attestations[0],
      expectedNonce: nonce,
      nonceExpiresAt: new Date(nonceExpiresAt),
    })
    checkKeyAttestation(verified, nonce)
    usedNonces.add(nonce)
    holderJwks.push(...verified.payload.attested_keys.map(({ kty, crv, x, y }) => ({ kty, crv, x, y })))
  }
  const jwts = configurationId === ATTESTED_CONFIGURATION_ID ? [] : parsed.proofs?.jwt
  if (!jwts || (jwts.length === 0 && holderJwks.length === 0)) throw serverError(Oauth2ErrorCodes.InvalidProof, 'a jwt proof is required')
  if (jwts.length + holderJwks.length > batchSize) {
    throw serverError(Oauth2ErrorCodes.InvalidCredentialRequest, 'too many proofs for the batch size')
  }
  for (const jwt of jwts) {
    let nonce
    try {
      nonce = decodeJwt({ jwt }).payload.nonce
    } catch {
      throw serverError(Oauth2ErrorCodes.InvalidProof, 'proof is not a JWT')
    }
    const nonceExpiresAt = nonce ? cNonces.get(nonce) : undefined
    if (!nonceExpiresAt) throw serverError(Oauth2ErrorCodes.InvalidNonce, 'proof nonce is missing or unknown')
    const verified = await issuer.verifyCredentialRequestJwtProof({
      issuerMetadata: resolvedIssuerMetadata,
      jwt,
      expectedNonce: nonce,
      nonceExpiresAt: new Date(nonceExpiresAt),
      clientId: verifiedToken.tokenPayload.client_id,
    })
    if (Math.abs(seconds() - verified.payload.iat) > SKEW) {
      throw serverError(Oauth2ErrorCodes.InvalidProof, 'proof iat is not fresh')
    }
    if (verified.signer.method !== 'jwk') throw serverError(Oauth2ErrorCodes.InvalidProof, 'proof must carry a jwk')
    if (HAIP) checkKeyAttestation(verified.keyAttestation, nonce)
    usedNonces.add(nonce)
    holderJwks.push(verified.signer.publicJwk)
  }
  const thumbprints = new Set(await Promise.all(holderJwks.map((jwk) => jwkThumbprint(jwk))))
  if (thumbprints.size !== holderJwks.length) throw serverError(Oauth2ErrorCodes.InvalidProof, 'proofs repeat a key')
  for (const nonce of usedNonces) cNonces.delete(nonce)
  const credentials = []
  const tamper = verifiedToken.tokenPayload.tamper
  for (const jwk of holderJwks) credentials.push({ credential: await mintSdJwtVc(jwk, tamper) })
  if (verifiedToken.tokenPayload.deferred) {
    // OID4VCI 1.0 §8.3: deferred, to be fetched at the Deferred Credential Endpoint.
    purge(deferredTransactions)
    const transactionId = randomToken(16)
    deferredTransactions.set(transactionId, {
      grantId: verifiedToken.tokenPayload.grant_id,
      credentials,
      expiresAt: now() + LIFETIME.token * 1000,
    })
    const deferral = issuer.createCredentialResponse({
      credentialRequest: parsed.credentialRequest,
      transactionId,
      interval: DEFERRED_INTERVAL,
    })
    return credentialAnswer(202, deferral, encryption)
  }
  purge(notifications)
  const notificationId = randomToken(16)
  notifications.set(notificationId, { jti: verifiedToken.tokenPayload.jti, expiresAt: now() + LIFETIME.token * 1000 })
  const response = issuer.createCredentialResponse({
    credentialRequest: parsed.credentialRequest,
    credentials,
    notificationId,
  })
  return credentialAnswer(200, response, encryption)
}

/**
 * HAIP 1.0 §4.5.1 / OID4VCI 1.0 Appendix D: oid4vc-ts verified the proof's `key_attestation`
 * (x5c chain through the callback, signature, `exp`) and that the proof key is in
 * `attested_keys`; the required level (`key_attestations_required`, §12.2.4) and the `nonce`
 * are checked here.
 */
function checkKeyAttestation(keyAttestation, cNonce) {
  if (!keyAttestation) throw serverError(Oauth2ErrorCodes.InvalidProof, 'a key attestation is required (key_attestations_required)')
  const { payload } = keyAttestation
  const levels = Array.isArray(payload.key_storage) ? payload.key_storage : []
  if (!KEY_ATTESTATIONS_REQUIRED.key_storage.some((level) => levels.includes(level))) {
    throw serverError(Oauth2ErrorCodes.InvalidProof, 'the key attestation does not meet key_storage')
  }
  if (payload.nonce !== undefined && payload.nonce !== cNonce) {
    throw serverError(Oauth2ErrorCodes.InvalidProof, 'the key attestation nonce is not the c_nonce')
  }
}

async function deferredCredentialEndpoint(req) {
  const request = requestLike(req)
  const text = await readBody(req)
  const verifiedToken = await verifyAccessToken(request)
  const { body, encryption } = await credentialRequestBody(req, text)
  let transactionId
  try {
    transactionId = issuer.parseDeferredCredentialRequest({ deferredCredentialRequest: body }).deferredCredentialRequest.transaction_id
  } catch {
    throw serverError(Oauth2ErrorCodes.InvalidCredentialRequest, 'transaction_id is required')
  }
  const entry = deferredTransactions.get(transactionId)
  if (!entry || entry.expiresAt < now() || entry.grantId !== verifiedToken.tokenPayload.grant_id) {
    throw serverError('invalid_transaction_id', 'unknown transaction_id')
  }
  deferredTransactions.delete(transactionId)
  return credentialAnswer(200, issuer.createDeferredCredentialResponse({ credentials: entry.credentials }), encryption)
}

async function notificationEndpoint(req) {
  const request = requestLike(req)
  const text = await readBody(req)
  const verifiedToken = await verifyAccessToken(request)
  let body
  try {
    body = JSON.parse(text)
  } catch {
    throw serverError('invalid_notification_request', 'body is not JSON')
  }
  const events = ['credential_accepted', 'credential_failure', 'credential_deleted']
  if (typeof body?.notification_id !== 'string' || !events.includes(body.event)) {
    throw serverError('invalid_notification_request', 'notification_id and a known event are required')
  }
  const entry = notifications.get(body.notification_id)
  if (!entry || entry.jti !== verifiedToken.tokenPayload.jti) {
    throw serverError('invalid_notification_id', 'unknown notification_id for this access token')
  }
  notificationEvents.push({ notification_id: body.notification_id, event: body.event })
  return { status: 204, body: null }
}

async function parEndpoint(req) {
  const request = requestLike(req)
  const form = formBody(req, await readBody(req))
  const parsed = await authorizationServer.parsePushedAuthorizationRequest({ request, authorizationRequest: form })
  requireDpopNonce(parsed.dpop?.jwt, { resource: false })
  const verified = await authorizationServer.verifyPushedAuthorizationRequest({
    authorizationServerMetadata: asMetadata,
    authorizationRequest: parsed.authorizationRequest,
    request,
    dpop: {
      jwt: parsed.dpop?.jwt,
      jwkThumbprint: parsed.authorizationRequest.dpop_jkt,
      allowedSigningAlgs: DPOP_ALGS,
      required: HAIP,
    },
    clientAttestation: attestationOptions(parsed, undefined),
  })
  if (parsed.dpop?.jwt) checkDpopReplay(parsed.dpop.jwt, { resource: false })
  if (HAIP) checkClientAttestation(verified.clientAttestation)
  validateAuthorizationRequest(parsed.authorizationRequest)
  purge(pushedRequests)
  const requestUri = `${pushedAuthorizationRequestUriPrefix}${randomToken(24)}`
  pushedRequests.set(requestUri, {
    request: parsed.authorizationRequest,
    dpopJkt: verified.dpop?.jwkThumbprint,
    expiresAt: now() + LIFETIME.par * 1000,
  })
  const { pushedAuthorizationResponse } = authorizationServer.createPushedAuthorizationResponse({
    requestUri,
    expiresInSeconds: LIFETIME.par,
  })
  return { status: 201, body: pushedAuthorizationResponse }
}

function validateAuthorizationRequest(request) {
  if (request.response_type !== 'code') throw serverError('unsupported_response_type', 'response_type must be code')
  if (!request.client_id) throw serverError(Oauth2ErrorCodes.InvalidRequest, 'client_id is required')
  if (!request.redirect_uri) throw serverError(Oauth2ErrorCodes.InvalidRequest, 'redirect_uri is required')
  if (!request.code_challenge || request.code_challenge_method !== 'S256') {
    throw serverError(Oauth2ErrorCodes.InvalidRequest, 'PKCE with S256 is required')
  }
  const scopes = (request.scope ?? '').split(' ').filter(Boolean)
  let details = []
  if (request.authorization_details) {
    try {
      details = typeof request.authorization_details === 'string' ? JSON.parse(request.authorization_details) : request.authorization_details
    } catch {
      throw serverError('invalid_authorization_details', 'authorization_details is not JSON')
    }
  }
  if (!Array.isArray(details)) throw serverError('invalid_authorization_details', 'authorization_details must be an array')
  const detailWanted = details.some(
    (d) => d?.type === 'openid_credential' && d.credential_configuration_id === CONFIGURATION_ID,
  )
  if (!scopes.includes(SCOPE) && !detailWanted) {
    throw serverError(Oauth2ErrorCodes.InvalidScope, `ask for scope ${SCOPE} or its authorization_details`)
  }
  return { byDetails: detailWanted }
}

async function authorizeEndpoint(req) {
  const url = new URL(`${issuerUrl}${req.url}`)
  const query = Object.fromEntries(url.searchParams)
  let authorizationRequest
  let dpopJkt
  if (query.request_uri) {
    const pushed = pushedRequests.get(query.request_uri)
    pushedRequests.delete(query.request_uri)
    if (!pushed || pushed.expiresAt < now()) throw serverError(Oauth2ErrorCodes.InvalidRequestUri, 'unknown or expired request_uri')
    if (query.client_id !== pushed.request.client_id) throw serverError(Oauth2ErrorCodes.InvalidRequest, 'client_id does not match the pushed request')
    authorizationRequest = pushed.request
    dpopJkt = pushed.dpopJkt
  } else if (HAIP) {
    // HAIP 1.0 §4 (FAPI 2.0): authorization requests only by PAR.
    throw serverError(Oauth2ErrorCodes.InvalidRequest, 'pushed authorization requests are required')
  } else {
    authorizationRequest = query
    dpopJkt = query.dpop_jkt
  }
  const { byDetails } = validateAuthorizationRequest(authorizationRequest)
  const code = randomToken(32)
  authorizationCodes.set(code, {
    clientId: authorizationRequest.client_id,
    redirectUri: authorizationRequest.redirect_uri,
    codeChallenge: authorizationRequest.code_challenge,
    codeChallengeMethod: authorizationRequest.code_challenge_method,
    dpopJkt,
    byDetails,
    expiresAt: now() + LIFETIME.code * 1000,
  })
  const redirect = new URL(authorizationRequest.redirect_uri)
  redirect.searchParams.set('code', code)
  if (authorizationRequest.state) redirect.searchParams.set('state', authorizationRequest.state)
  redirect.searchParams.set('iss', issuerUrl)
  return { status: 302, headers: { Location: redirect.toString() }, body: null }
}

async function route(req) {
  const { pathname } = new URL(`http://127.0.0.1${req.url}`)
  const get = req.method === 'GET'
  const post = req.method === 'POST'
  if (get && pathname === '/.well-known/openid-credential-issuer') return { status: 200, body: credentialIssuerMetadata }
  if (get && pathname === '/.well-known/oauth-authorization-server') return { status: 200, body: asMetadata }
  if (get && pathname === '/.well-known/jwt-vc-issuer') {
    return { status: 200, body: { issuer: issuerUrl, jwks: { keys: [credentialKey.publicJwk] } } }
  }
  if (get && pathname === '/jwks') return { status: 200, body: { keys: [asKey.publicJwk] } }
  const tamper = new URL(`http://127.0.0.1${req.url}`).searchParams.get('tamper') ?? undefined
  if (tamper !== undefined && !TAMPER_MODES.includes(tamper)) return { status: 400, body: { error: 'unknown tamper mode' } }
  const offerMatch = pathname.match(/^\/offers\/(pre_auth|pre_auth_tx_code|pre_auth_deferred|pre_auth_attestation_proof)$/) ?? (tamper ? null : pathname.match(/^\/offers\/(auth_code)$/))
  if (get && offerMatch && OFFER_KINDS.includes(offerMatch[1])) return { status: 200, body: await mintOffer(offerMatch[1], true, tamper) }
  const mintMatch = pathname.match(/^\/mint\/(pre_auth|pre_auth_tx_code|auth_code|pre_auth_deferred|pre_auth_attestation_proof)$/)
  if (get && mintMatch && OFFER_KINDS.includes(mintMatch[1])) return { status: 200, text: await mintOffer(mintMatch[1], false, tamper) }
  if (get && pathname === '/authorize') return authorizeEndpoint(req)
  if (post && pathname === '/token') return tokenEndpoint(req)
  if (post && pathname === '/par') return parEndpoint(req)
  if (post && pathname === '/nonce') return nonceEndpoint(req)
  if (post && pathname === '/credential') return credentialEndpoint(req)
  if (post && pathname === '/deferred_credential') return deferredCredentialEndpoint(req)
  if (post && pathname === '/notification') return notificationEndpoint(req)
  if (get && pathname === '/_events') return { status: 200, body: { notifications: notificationEvents, ...events } }
  return { status: 404, body: { error: 'not_found' } }
}

function errorToResponse(error) {
  if (error instanceof Oauth2ResourceUnauthorizedError) {
    const challenge = error.wwwAuthenticateHeaders
      .map(({ scheme, error: code, error_description: description }) => {
        const params = []
        if (code) params.push(`error="${headerSafe(code)}"`)
        if (description) params.push(`error_description="${headerSafe(description)}"`)
        if (scheme === 'DPoP') params.push(`algs="${DPOP_ALGS.join(' ')}"`)
        return params.length ? `${scheme} ${params.join(', ')}` : scheme
      })
      .join(', ')
    const first = error.wwwAuthenticateHeaders[0] ?? {}
    return {
      status: 401,
      headers: { 'WWW-Authenticate': challenge, ...error.extraHeaders },
      body: { error: first.error ?? Oauth2ErrorCodes.InvalidToken, error_description: first.error_description },
    }
  }
  if (error instanceof Oauth2ServerErrorResponseError) {
    return { status: error.status ?? 400, headers: error.extraHeaders ?? {}, body: error.errorResponse }
  }
  process.stderr.write(`internal error: ${error?.stack ?? error}\n`)
  return { status: 500, body: { error: 'server_error' } }
}

const server = http.createServer(async (req, res) => {
  let response
  try {
    response = await route(req)
  } catch (error) {
    response = errorToResponse(error)
    process.stderr.write(`  error: ${String(error?.message ?? error).split('\n')[0]}\n`)
    if (error?.cause) process.stderr.write(`  cause: ${String(error.cause?.message ?? error.cause).split('\n').slice(0, 4).join(' ')}\n`)
  }
  const headers = { 'Cache-Control': 'no-store', ...response.headers }
  let payload = ''
  if (response.text !== undefined) {
    headers['Content-Type'] = response.contentType ?? 'text/plain; charset=utf-8'
    payload = response.text
  } else if (response.body !== null && response.body !== undefined) {
    headers['Content-Type'] = 'application/json'
    payload = JSON.stringify(response.body)
  }
  process.stderr.write(`${req.method} ${req.url.split('?')[0]} -> ${response.status}\n`)
  res.writeHead(response.status, headers)
  res.end(payload)
})

server.listen(Number.parseInt(options.port, 10), '127.0.0.1', () => {
  issuerUrl = `http://127.0.0.1:${server.address().port}`
  buildMetadata()
  const offers = {}
  const mint = {}
  for (const kind of OFFER_KINDS) {
    const reference = encodeURIComponent(`${issuerUrl}/offers/${kind}`)
    offers[kind] = `openid-credential-offer://?credential_offer_uri=${reference}`
    mint[kind] = `${issuerUrl}/mint/${kind}`
  }
  process.stdout.write(
    `${JSON.stringify({ issuer: issuerUrl, offers, tx_code: TX_CODE, mint, vct: VCT, configuration_id: CONFIGURATION_ID, haip: HAIP })}\n`,
  )
})

// Never outlive the test that started us.
const maxSeconds = Number.parseInt(options['max-seconds'], 10)
setTimeout(() => process.exit(0), maxSeconds * 1000).unref()
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0))
