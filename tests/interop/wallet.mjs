#!/usr/bin/env node
// Interop wallet: receives credentials from an OID4VCI issuer with oid4vc-ts (@openid4vc/openid4vci
// and @openid4vc/oauth2) and checks them independently of the issuer's own library.
//
//   node wallet.mjs OFFER_URI [--tx-code CODE] [--login user:pass] [--batch N]
//                             [--client-id ID] [--redirect-uri URI] [--flow auto|pre_auth|auth_code]
//                             [--no-dpop] [--attester-key KEY.jwk --attester-chain CHAIN.pem]
//                             [--trust-anchor ROOT.pem] [--jwe auto|off|request-only] [--jwe-enc ENC]
//                             [--jwe-response-enc ENC] [--refresh]
//                             [--bad-refresh no-attestation|other-dpop-key]
//
// With an attester (HAIP 1.0 §4.4.1, §4.5.1) it authenticates with a wallet attestation made by
// oid4vc-ts (createClientAttestationJwt, clientAuthenticationClientAttestationJwt) and puts a
// key attestation (createKeyAttestationJwt) into every jwt proof. With a trust anchor each
// credential must carry an x5c chain to it, and the signature is checked with the leaf's key
// (node:crypto X509Certificate; no code of the library under test).
//
// Encryption (OID4VCI 1.0 §10) is glue, because oid4vc-ts 0.4.6 has no JWE for credential
// requests: jwe.mjs wraps the `fetch` callback oid4vc-ts uses, so requests to the credential
// (and deferred) endpoint go out as JWEs made with npm `jose` whenever the issuer's metadata
// offers encryption (`--jwe off` sends plain JSON, `--jwe request-only` asks for no encrypted
// answer, `--jwe-enc` / `--jwe-response-enc` force other `enc` values: negative cases), and
// encrypted answers are decrypted before oid4vc-ts reads them. With `--refresh` the wallet
// waits until its access token has expired, sees the credential endpoint refuse it, and gets a
// new one with oid4vc-ts's Oauth2Client.retrieveRefreshTokenAccessToken (DPoP and the wallet
// attestation again); `--bad-refresh` first tries a refresh without the attestation or with
// another DPoP key (which must be refused), then refreshes properly at once.
//
// Prints one JSON line: {"ok", "flow", "spec_version", "token_type", "dpop", "issuer",
// "credentials": [{"configuration_id", "credential", "holder_jwk", "header", "payload", "claims",
// "verified", "checks"}], "notifications": [{"notification_id", "event", "status"}],
// "encryption": {"request", "response", "exchanges": [{"endpoint", "status", "request_type",
// "response_type", "request_header", "response_header"}]}, "refresh": {"expires_in",
// "refused", "expired_status", "expired_error", "token_type", "new_token"} | null, "error"}.
// Exit status 0 when ok, 1 otherwise, 2 on bad usage.

import { X509Certificate, webcrypto } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'

import {
  Oauth2Client,
  Oauth2ClientErrorResponseError,
  clientAuthenticationClientAttestationJwt,
  createClientAttestationJwt,
  getAuthorizationServerMetadataFromList,
  preAuthorizedCodeGrantIdentifier,
} from '@openid4vc/oauth2'
import {
  Openid4vciClient,
  Openid4vciRetrieveCredentialsError,
  Openid4vciVersion,
  createKeyAttestationJwt,
  determineAuthorizationServerForCredentialOffer,
  extractScopesForCredentialConfigurationIds,
} from '@openid4vc/openid4vci'
import { setGlobalConfig } from '@openid4vc/utils'

import {
  decodeJws,
  generateEs256Key,
  insertWellKnown,
  jwkThumbprint,
  makeCallbacks,
  randomToken,
  verifyEs256Jws,
  verifySdJwtVc,
} from './common.mjs'
import { encryptingFetch, encryptionPlan } from './jwe.mjs'

// The issuers under test run on http://127.0.0.1; oid4vc-ts refuses http:// URLs unless told.
setGlobalConfig({ allowInsecureUrls: true })

const { values: options, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    'tx-code': { type: 'string' },
    login: { type: 'string' },
    batch: { type: 'string', default: '1' },
    'client-id': { type: 'string', default: 'interop-wallet' },
    'redirect-uri': { type: 'string', default: 'http://127.0.0.1/interop-wallet/callback' },
    flow: { type: 'string', default: 'auto' },
    'no-dpop': { type: 'boolean', default: false },
    'attester-key': { type: 'string' },
    'attester-chain': { type: 'string' },
    'trust-anchor': { type: 'string' },
    jwe: { type: 'string', default: 'auto' },
    'jwe-enc': { type: 'string' },
    'jwe-response-enc': { type: 'string' },
    refresh: { type: 'boolean', default: false },
    'bad-refresh': { type: 'string' },
  },
})

if (
  positionals.length !== 1 ||
  !['auto', 'pre_auth', 'auth_code'].includes(options.flow) ||
  !['auto', 'off', 'request-only'].includes(options.jwe) ||
  ![undefined, 'no-attestation', 'other-dpop-key'].includes(options['bad-refresh'])
) {
  process.stderr.write('usage: node wallet.mjs OFFER_URI [--tx-code C] [--login u:p] [--batch N] [--flow F]\n')
  process.exit(2)
}

const offerUri = positionals[0]
const batch = Number.parseInt(options.batch, 10)
const clientId = options['client-id']
const redirectUri = options['redirect-uri']

function pemCertificates(path) {
  const text = readFileSync(path, 'utf8')
  return (text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? []).map(
    (pem) => new X509Certificate(pem),
  )
}

function leafJwk(x5c) {
  const { kty, crv, x, y } = new X509Certificate(Buffer.from(x5c[0], 'base64')).publicKey.export({ format: 'jwk' })
  return { kty, crv, x, y }
}

const keyring = new Map()
let jweFetch = null // set once the issuer metadata says what to encrypt (jwe.mjs)
let attestationAuth = null // set once the wallet attestation is made (HAIP 1.0 §4.4.1)
let attestationSuspended = false // --bad-refresh no-attestation: one request without it
const baseCallbacks = makeCallbacks({
  keyring,
  // Public client: `client_id` in the body for the authorization code grant and PAR, nothing
  // for the anonymous pre-authorized code grant (OID4VCI §6.1). With an attester: the
  // attestation headers (oid4vc-ts) and its `sub` as `client_id`.
  clientAuthentication: async (request) => {
    if (attestationAuth && !attestationSuspended) {
      await attestationAuth(request)
      request.body.client_id = clientId
      return
    }
    if (request.body.grant_type === preAuthorizedCodeGrantIdentifier) return
    request.body.client_id = clientId
  },
})
const callbacks = {
  ...baseCallbacks,
  fetch: (input, init) => (jweFetch ?? fetch)(input, init),
  // x5c signers (attestations) sign with the key of their leaf certificate. oid4vc-ts 0.4.6
  // types key attestations `keyattestation+jwt` (Draft 15); OID4VCI 1.0 Appendix D says
  // `key-attestation+jwt`, which is what is sent.
  signJwt: async (signer, { header, payload }) => {
    const fixed = header.typ === 'keyattestation+jwt' ? { ...header, typ: 'key-attestation+jwt' } : header
    if (signer.method !== 'x5c') return baseCallbacks.signJwt(signer, { header: fixed, payload })
    const signed = await baseCallbacks.signJwt(
      { method: 'jwk', alg: signer.alg, publicJwk: leafJwk(signer.x5c) },
      { header: fixed, payload },
    )
    return { ...signed, signerJwk: leafJwk(signer.x5c) }
  },
}

const attesterX5c = options['attester-chain']
  ? pemCertificates(options['attester-chain']).map((c) => c.raw.toString('base64'))
  : []
const attesterSigner = { method: 'x5c', x5c: attesterX5c, alg: 'ES256' }
const trustAnchors = options['trust-anchor'] ? pemCertificates(options['trust-anchor']) : []

async function loadAttester() {
  if (!options['attester-key']) return
  const jwk = JSON.parse(readFileSync(options['attester-key'], 'utf8'))
  const privateKey = await webcrypto.subtle.importKey('jwk', jwk, { name: 'ECDSA', namedCurve: 'P-256' }, false, [
    'sign',
  ])
  keyring.set(await jwkThumbprint({ kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y }), privateKey)
  const instance = await generateEs256Key()
  keyring.set(instance.thumbprint, instance.privateKey)
  const clientAttestationJwt = await createClientAttestationJwt({
    expiresAt: new Date(Date.now() + 3600 * 1000),
    issuer: 'https://interop-wallet-provider.example',
    clientId,
    confirmation: { jwk: instance.publicJwk },
    callbacks,
    signer: attesterSigner,
  })
  attestationAuth = clientAuthenticationClientAttestationJwt({ clientAttestationJwt, callbacks })
}

/**
 * The credential's `x5c` chain validated to a trust anchor with node:crypto (signatures and
 * validity of each certificate, the signer not self-signed), and the issuer signature verified
 * with the leaf's key. Returns false on any failure.
 */
async function x5cVerified(credential) {
  try {
    const jwt = credential.split('~')[0]
    const { header } = decodeJws(jwt)
    if (!Array.isArray(header.x5c) || header.x5c.length === 0) return false
    const chain = header.x5c.map((entry) => new X509Certificate(Buffer.from(entry, 'base64')))
    const now = Date.now()
    if (chain[0].issuer === chain[0].subject) return false
    for (const certificate of chain) {
      if (Date.parse(certificate.validFrom) > now || Date.parse(certificate.validTo) < now) return false
    }
    for (let i = 0; i + 1 < chain.length; i++) {
      if (!chain[i].checkIssued(chain[i + 1]) || !chain[i].verify(chain[i + 1].publicKey)) return false
    }
    const top = chain[chain.length - 1]
    const anchored = trustAnchors.some((root) => top.checkIssued(root) && top.verify(root.publicKey))
    if (!anchored) return false
    await verifyEs256Jws(jwt, leafJwk(header.x5c))
    return true
  } catch {
    return false
  }
}

const result = {
  ok: false,
  flow: null,
  spec_version: null,
  token_type: null,
  dpop: false,
  issuer: null,
  credentials: [],
  notifications: [],
  encryption: { request: false, response: false, exchanges: [] },
  refresh: null,
  error: null,
}

function decodeEntities(text) {
  return text
    .replace(/&#x([0-9a-f]+);/gi, (_, hex) => String.fromCodePoint(Number.parseInt(hex, 16)))
    .replace(/&#(\d+);/g, (_, dec) => String.fromCodePoint(Number.parseInt(dec, 10)))
    .replace(/&quot;/g, '"')
    .replace(/&#39;|&apos;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&')
}

function attributes(tag) {
  const attrs = {}
  for (const match of tag.matchAll(/([a-zA-Z_:][-a-zA-Z0-9_:.]*)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))/g)) {
    attrs[match[1].toLowerCase()] = decodeEntities(match[2] ?? match[3] ?? match[4] ?? '')
  }
  return attrs
}

/**
 * Log in at the issuer's HTML login page the way a browser would: GET the authorization URL,
 * fill the form's `username` and `password`, submit it with its other fields, and return the
 * redirect `Location` (the authorization response).
 */
async function loginAndGetRedirect(authorizationUrl, username, password) {
  const first = await fetch(authorizationUrl, { redirect: 'manual' })
  if (first.status >= 300 && first.status < 400) return new URL(first.headers.get('location'), authorizationUrl).toString()
  const html = await first.text()
  if (first.status !== 200) throw new Error(`authorization endpoint answered ${first.status}: ${html.slice(0, 300)}`)
  const formMatch = html.match(/<form\b[^>]*>([\s\S]*?)<\/form>/i)
  if (!formMatch) throw new Error(`no <form> in the login page: ${html.slice(0, 300)}`)
  const formAttrs = attributes(formMatch[0].slice(0, formMatch[0].indexOf('>') + 1))
  const method = (formAttrs.method ?? 'get').toUpperCase()
  const action = new URL(formAttrs.action || authorizationUrl, authorizationUrl)
  const fields = new URLSearchParams()
  let sawUser = false
  let sawPassword = false
  for (const input of formMatch[1].matchAll(/<input\b[^>]*>/gi)) {
    const attrs = attributes(input[0])
    if (!attrs.name) continue
    if (attrs.name === 'username') {
      fields.append('username', username)
      sawUser = true
    } else if (attrs.name === 'password') {
      fields.append('password', password)
      sawPassword = true
    } else if (!['submit', 'button', 'checkbox', 'radio'].includes((attrs.type ?? 'text').toLowerCase()) || 'checked' in attrs) {
      fields.append(attrs.name, attrs.value ?? '')
    }
  }
  if (!sawUser || !sawPassword) throw new Error('the login form has no username/password fields')
  const cookies = (first.headers.getSetCookie?.() ?? []).map((c) => c.split(';', 1)[0]).join('; ')
  const headers = cookies ? { cookie: cookies } : {}
  let response
  if (method === 'POST') {
    response = await fetch(action, {
      method: 'POST',
      redirect: 'manual',
      headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' },
      body: fields.toString(),
    })
  } else {
    for (const [k, v] of fields) action.searchParams.append(k, v)
    response = await fetch(action, { redirect: 'manual', headers })
  }
  const location = response.headers.get('location')
  if (response.status < 300 || response.status >= 400 || !location) {
    throw new Error(`login did not redirect (status ${response.status}): ${(await response.text()).slice(0, 300)}`)
  }
  return new URL(location, action).toString()
}

async function fetchIssuerJwks(issuer) {
  const url = insertWellKnown(issuer, 'jwt-vc-issuer')
  const response = await fetch(url)
  if (!response.ok) throw new Error(`GET ${url} answered ${response.status}`)
  const metadata = await response.json()
  if (metadata.issuer !== issuer) throw new Error(`jwt-vc-issuer metadata names issuer ${metadata.issuer}`)
  if (metadata.jwks) return metadata.jwks
  if (metadata.jwks_uri) {
    const jwksResponse = await fetch(metadata.jwks_uri)
    if (!jwksResponse.ok) throw new Error(`GET ${metadata.jwks_uri} answered ${jwksResponse.status}`)
    return await jwksResponse.json()
  }
  throw new Error('jwt-vc-issuer metadata has neither jwks nor jwks_uri')
}

async function checkCredential({ credential, holderKey, issuer, configuration, jwks, expectedTyp }) {
  const checks = {}
  const verified = await verifySdJwtVc(credential, { jwks })
  checks.signature = true
  checks.typ = verified.header.typ === expectedTyp
  checks.iss = verified.payload.iss === issuer
  checks.vct = verified.payload.vct === configuration.vct
  const cnfJwk = verified.payload.cnf?.jwk
  checks.cnf_jwk = !!cnfJwk && (await jwkThumbprint(cnfJwk)) === holderKey.thumbprint
  checks.no_private_cnf = !!cnfJwk && !('d' in cnfJwk)
  const now = Math.floor(Date.now() / 1000)
  const { iat, nbf, exp } = verified.payload
  checks.iat = typeof iat === 'number' && iat <= now + 60
  checks.validity = (nbf === undefined || nbf <= now + 60) && (exp === undefined || exp > now - 60)
  return {
    header: verified.header,
    payload: verified.payload,
    claims: verified.claims,
    disclosures: verified.disclosures,
    checks,
    verified: Object.values(checks).every(Boolean),
  }
}

function describeError(error) {
  const described = { name: error?.constructor?.name ?? 'Error', message: String(error?.message ?? error) }
  if (error instanceof Oauth2ClientErrorResponseError) {
    described.status = error.response?.status
    described.body = error.errorResponse
  } else if (error instanceof Openid4vciRetrieveCredentialsError) {
    described.status = error.response?.response?.status
    described.body = error.response?.credentialErrorResponseResult?.data ?? error.responseText
  } else if (error?.response instanceof Response) {
    described.status = error.response.status
  }
  if (error?.errorResponse && !described.body) described.body = error.errorResponse
  return described
}

async function run() {
  await loadAttester()
  const client = new Openid4vciClient({ callbacks })
  const oauth2 = new Oauth2Client({ callbacks })
  const offer = await client.resolveCredentialOffer(offerUri)
  const issuerMetadata = await client.resolveIssuerMetadata(offer.credential_issuer)
  result.issuer = offer.credential_issuer
  result.spec_version = issuerMetadata.originalDraftVersion
  const credentialIssuer = issuerMetadata.credentialIssuer
  const plan = encryptionPlan(credentialIssuer, {
    mode: options.jwe,
    requestEnc: options['jwe-enc'],
    responseEnc: options['jwe-response-enc'],
  })
  result.encryption.request = !!plan?.request
  result.encryption.response = !!plan?.response
  jweFetch = encryptingFetch({
    plan,
    endpoints: [credentialIssuer.credential_endpoint, credentialIssuer.deferred_credential_endpoint].filter(Boolean),
    exchanges: result.encryption.exchanges,
  })

  const grants = offer.grants ?? {}
  let flow = options.flow
  if (flow === 'auto') flow = grants[preAuthorizedCodeGrantIdentifier] ? 'pre_auth' : 'auth_code'
  result.flow = flow
  const grant = flow === 'pre_auth' ? grants[preAuthorizedCodeGrantIdentifier] : grants.authorization_code
  if (!grant) throw new Error(`the offer has no ${flow} grant`)
  const asIssuer = determineAuthorizationServerForCredentialOffer({
    issuerMetadata,
    grantAuthorizationServer: grant.authorization_server,
  })
  const asMetadata = getAuthorizationServerMetadataFromList(issuerMetadata.authorizationServers, asIssuer)

  // DPoP (RFC 9449) whenever the authorization server advertises ES256 for it (unless --no-dpop).
  const dpopKey = await generateEs256Key()
  keyring.set(dpopKey.thumbprint, dpopKey.privateKey)
  const dpopSupported = oauth2.isDpopSupported({ authorizationServerMetadata: asMetadata })
  const useDpop =
    !options['no-dpop'] && dpopSupported.supported && dpopSupported.dpopSigningAlgValuesSupported.includes('ES256')
  const dpopSigner = { method: 'jwk', alg: 'ES256', publicJwk: dpopKey.publicJwk }
  result.dpop = useDpop

  let tokenResult
  if (flow === 'pre_auth') {
    tokenResult = await client.retrievePreAuthorizedCodeAccessTokenFromOffer({
      credentialOffer: offer,
      issuerMetadata,
      txCode: options['tx-code'],
      dpop: useDpop ? { signer: dpopSigner } : undefined,
    })
  } else {
    if (!options.login) throw new Error('the authorization code flow needs --login user:pass')
    const [username, ...passwordParts] = options.login.split(':')
    const state = randomToken(16)
    const scope = extractScopesForCredentialConfigurationIds({
      credentialConfigurationIds: offer.credential_configuration_ids,
      issuerMetadata,
    })
    const additionalRequestPayload = { issuer_state: grant.issuer_state }
    if (!scope) {
      additionalRequestPayload.authorization_details = JSON.stringify(
        offer.credential_configuration_ids.map((id) => ({ type: 'openid_credential', credential_configuration_id: id })),
      )
    }
    // Oauth2Client.initiateAuthorization: PAR when advertised, PKCE from the AS metadata, and
    // the `state` parameter (Openid4vciClient.initiateAuthorization does not pass one).
    const authorization = await oauth2.initiateAuthorization({
      authorizationServerMetadata: asMetadata,
      clientId,
      redirectUri,
      scope: scope?.join(' '),
      state,
      resource: issuerMetadata.credentialIssuer.credential_issuer,
      additionalRequestPayload,
      dpop: useDpop ? { signer: dpopSigner } : undefined,
    })
    const redirect = await loginAndGetRedirect(authorization.authorizationRequestUrl, username, passwordParts.join(':'))
    if (!redirect.startsWith(redirectUri)) throw new Error(`redirected to ${redirect}, not to the redirect_uri`)
    const response = client.parseAndVerifyAuthorizationResponseRedirectUrl({
      url: redirect,
      authorizationServerMetadata: asMetadata,
    })
    if (response.error) throw new Error(`authorization error response: ${JSON.stringify(response)}`)
    if (response.state !== state) throw new Error('state in the authorization response does not match')
    tokenResult = await client.retrieveAuthorizationCodeAccessTokenFromOffer({
      issuerMetadata,
      credentialOffer: offer,
      authorizationCode: response.code,
      pkceCodeVerifier: authorization.pkce?.codeVerifier,
      redirectUri,
      dpop: useDpop ? { signer: dpopSigner, nonce: authorization.dpop?.nonce } : undefined,
    })
  }
  let { accessTokenResponse } = tokenResult
  result.token_type = accessTokenResponse.token_type
  let dpopNonce = tokenResult.dpop?.nonce
  let cNonce = accessTokenResponse.c_nonce

  const badRefresh = options['bad-refresh']
  if (options.refresh || badRefresh) {
    // Refresh the access token (RFC 6749 §6) with oid4vc-ts: a DPoP proof of the same key and
    // the wallet attestation. With --refresh, first let the token expire and see the credential
    // endpoint refuse it; with --bad-refresh, first a refresh without one of the two (refused).
    const { refresh_token: refreshToken, expires_in: expiresIn } = accessTokenResponse
    if (!refreshToken) throw new Error('the token response has no refresh_token')
    result.refresh = { expires_in: expiresIn, refused: null }
    if (badRefresh) {
      const otherKey = await generateEs256Key()
      keyring.set(otherKey.thumbprint, otherKey.privateKey)
      const signer =
        badRefresh === 'other-dpop-key' ? { method: 'jwk', alg: 'ES256', publicJwk: otherKey.publicJwk } : dpopSigner
      attestationSuspended = badRefresh === 'no-attestation'
      try {
        await oauth2.retrieveRefreshTokenAccessToken({
          authorizationServerMetadata: asMetadata,
          refreshToken,
          resource: credentialIssuer.credential_issuer,
          dpop: { signer, nonce: dpopNonce },
        })
        throw new Error(`the refresh with ${badRefresh} was accepted`)
      } catch (error) {
        if (!(error instanceof Oauth2ClientErrorResponseError)) throw error
        result.refresh.refused = describeError(error)
      } finally {
        attestationSuspended = false
      }
    }
  }
  if (options.refresh) {
    const expiresIn = accessTokenResponse.expires_in
    if (typeof expiresIn !== 'number' || expiresIn > 30) throw new Error(`expires_in ${expiresIn} is too long to wait for`)
    await new Promise((resolve) => setTimeout(resolve, (expiresIn + 1) * 1000))
    try {
      await client.retrieveCredentials({
        issuerMetadata,
        accessToken: accessTokenResponse.access_token,
        credentialConfigurationId: offer.credential_configuration_ids[0],
        dpop: useDpop ? { signer: dpopSigner, nonce: dpopNonce } : undefined,
      })
      throw new Error('the expired access token was accepted')
    } catch (error) {
      if (!(error instanceof Openid4vciRetrieveCredentialsError)) throw error
      const unauthorized = error.response?.response
      result.refresh.expired_status = unauthorized?.status
      result.refresh.expired_error = unauthorized?.headers.get('www-authenticate') ?? null
    }
  }
  if (options.refresh || badRefresh) {
    const refreshed = await oauth2.retrieveRefreshTokenAccessToken({
      authorizationServerMetadata: asMetadata,
      refreshToken: accessTokenResponse.refresh_token,
      resource: credentialIssuer.credential_issuer,
      dpop: useDpop ? { signer: dpopSigner, nonce: dpopNonce } : undefined,
    })
    result.refresh.token_type = refreshed.accessTokenResponse.token_type
    result.refresh.new_token = refreshed.accessTokenResponse.access_token !== accessTokenResponse.access_token
    accessTokenResponse = refreshed.accessTokenResponse
    dpopNonce = refreshed.dpop?.nonce ?? dpopNonce
  }

  const jwks = await fetchIssuerJwks(offer.credential_issuer)
  const singularProof =
    batch === 1 &&
    [Openid4vciVersion.Draft11, Openid4vciVersion.Draft14].includes(issuerMetadata.originalDraftVersion)

  for (const configurationId of offer.credential_configuration_ids) {
    const configuration = issuerMetadata.credentialIssuer.credential_configurations_supported[configurationId]
    if (issuerMetadata.credentialIssuer.nonce_endpoint) {
      cNonce = (await client.requestNonce({ issuerMetadata })).c_nonce
    }
    const holderKeys = []
    const jwts = []
    for (let i = 0; i < batch; i++) {
      const key = await generateEs256Key()
      keyring.set(key.thumbprint, key.privateKey)
      holderKeys.push(key)
      if (attesterX5c.length > 0) continue // proofs made below, with the key attestation
      const { jwt } = await client.createCredentialRequestJwtProof({
        issuerMetadata,
        credentialConfigurationId: configurationId,
        signer: { method: 'jwk', alg: 'ES256', publicJwk: key.publicJwk },
        nonce: cNonce,
        clientId: flow === 'auth_code' ? clientId : undefined,
      })
      jwts.push(jwt)
    }
    if (attesterX5c.length > 0) {
      // One key attestation for all keys of the request (HAIP 1.0 §4.5.1), in every proof.
      const keyAttestationJwt = await createKeyAttestationJwt({
        attestedKeys: holderKeys.map((k) => k.publicJwk),
        expiresAt: new Date(Date.now() + 600 * 1000),
        nonce: cNonce,
        use: 'proof_type.jwt',
        signer: attesterSigner,
        callbacks,
      })
      for (const key of holderKeys) {
        const { jwt } = await client.createCredentialRequestJwtProof({
          issuerMetadata,
          credentialConfigurationId: configurationId,
          signer: { method: 'jwk', alg: 'ES256', publicJwk: key.publicJwk },
          nonce: cNonce,
          clientId,
          keyAttestationJwt,
        })
        jwts.push(jwt)
      }
    }
    const retrieved = await client.retrieveCredentials({
      issuerMetadata,
      accessToken: accessTokenResponse.access_token,
      credentialConfigurationId: configurationId,
      ...(singularProof ? { proof: { proof_type: 'jwt', jwt: jwts[0] } } : { proofs: { jwt: jwts } }),
      dpop: useDpop ? { signer: dpopSigner, nonce: dpopNonce } : undefined,
    })
    dpopNonce = retrieved.dpop?.nonce ?? dpopNonce
    const response = retrieved.credentialResponse
    cNonce = response.c_nonce ?? cNonce
    const issued = response.credentials
      ? response.credentials.map((entry) => (typeof entry === 'string' ? entry : entry.credential))
      : [response.credential]
    if (issued.length !== holderKeys.length) {
      throw new Error(`asked for ${holderKeys.length} credentials, got ${issued.length}`)
    }
    const expectedTyp = configuration.format === 'vc+sd-jwt' ? 'vc+sd-jwt' : 'dc+sd-jwt'
    // Each credential must be bound to one of the proved keys, each key used once.
    const unused = [...holderKeys]
    for (const credential of issued) {
      if (typeof credential !== 'string') throw new Error('expected SD-JWT VC strings')
      let checked
      let holderKey
      for (const candidate of unused) {
        checked = await checkCredential({
          credential,
          holderKey: candidate,
          issuer: offer.credential_issuer,
          configuration,
          jwks,
          expectedTyp,
        })
        holderKey = candidate
        if (checked.checks.cnf_jwk) break
      }
      if (checked.checks.cnf_jwk) unused.splice(unused.indexOf(holderKey), 1)
      if (trustAnchors.length > 0) {
        checked.checks.x5c = await x5cVerified(credential)
        checked.verified = checked.verified && checked.checks.x5c
      }
      result.credentials.push({
        configuration_id: configurationId,
        credential,
        holder_jwk: holderKey.publicJwk,
        ...checked,
      })
    }
    // Tell the issuer what became of the credentials (notification endpoint).
    if (response.notification_id && issuerMetadata.credentialIssuer.notification_endpoint) {
      const accepted = result.credentials.filter((c) => c.configuration_id === configurationId).every((c) => c.verified)
      const event = accepted ? 'credential_accepted' : 'credential_failure'
      const sent = await client.sendNotification({
        issuerMetadata,
        notification: { notificationId: response.notification_id, event },
        accessToken: accessTokenResponse.access_token,
        dpop: useDpop ? { signer: dpopSigner, nonce: dpopNonce } : undefined,
      })
      dpopNonce = sent.dpop?.nonce ?? dpopNonce
      result.notifications.push({ notification_id: response.notification_id, event, status: sent.response.status })
    }
  }
  result.ok = result.credentials.length > 0 && result.credentials.every((c) => c.verified)
  if (!result.ok) result.error = { name: 'CheckFailed', message: 'a credential failed the checks' }
}

try {
  await run()
} catch (error) {
  result.ok = false
  result.error = describeError(error)
}
process.stdout.write(`${JSON.stringify(result)}\n`)
process.exitCode = result.ok ? 0 : 1
