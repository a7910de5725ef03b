// ISO mdoc interop with @animo-id/mdoc: verify an IssuerSigned minted by oid4vci, and mint one
// for oid4vci to verify. Reads one JSON request on stdin, writes one JSON line on stdout.
//
//   {"op": "verify", "credential": "<base64url IssuerSigned>", "trusted": ["<IACA PEM>"],
//    "doctype": "...", "now": "<ISO date-time>"}
//     -> {"ok": true, "doctype", "claims": {ns: {element: value}}, "deviceKey": <JWK>}
//        or {"ok": false, "failed": [checks]}
//   {"op": "issue", "doctype", "namespaces": {ns: {element: value}}, "dates": [[ns, element]],
//    "signerJwk": <private JWK>, "certificatePem", "deviceJwk": <public JWK>,
//    "validFrom", "validUntil"}
//     -> {"credential": "<base64url IssuerSigned>"}
//
// The library leaves crypto and X.509 to its user (MdocContext); this harness supplies them
// on Node's webcrypto and X509Certificate. Written for this harness, nothing copied.

import { X509Certificate, createHash, randomBytes, webcrypto } from 'node:crypto'
import {
  DateOnly,
  Document,
  Verifier,
  cborEncode,
  parseIssuerSigned,
} from '@animo-id/mdoc'

const { subtle } = webcrypto
const CURVES = { ES256: ['P-256', 'SHA-256'], ES384: ['P-384', 'SHA-384'], ES512: ['P-521', 'SHA-512'] }

function ecParams(alg) {
  const found = CURVES[alg]
  if (!found) throw new Error(`unsupported alg ${alg}`)
  return found
}

async function sign1Sign({ sign1, jwk }) {
  const { data, alg } = sign1.getRawSigningData()
  const [namedCurve, hash] = ecParams(alg)
  const key = await subtle.importKey('jwk', jwk, { name: 'ECDSA', namedCurve }, false, ['sign'])
  return new Uint8Array(await subtle.sign({ name: 'ECDSA', hash }, key, data))
}

async function sign1Verify({ sign1, jwk, options }) {
  const { data, alg, signature } = sign1.getRawVerificationData(options)
  const [namedCurve, hash] = ecParams(alg)
  const { d, ...publicJwk } = jwk
  const key = await subtle.importKey('jwk', publicJwk, { name: 'ECDSA', namedCurve }, false, ['verify'])
  return subtle.verify({ name: 'ECDSA', hash }, key, signature, data)
}

function nameField(name, field) {
  return name
    .split('\n')
    .map((line) => line.split('='))
    .filter(([key]) => key === field)
    .map(([, ...rest]) => rest.join('='))
}

function x509Context(now) {
  return {
    getIssuerNameField: ({ certificate, field }) =>
      nameField(new X509Certificate(certificate).issuer, field),
    getPublicKey: ({ certificate }) => new X509Certificate(certificate).publicKey.export({ format: 'jwk' }),
    validateCertificateChain: ({ trustedCertificates, x5chain }) => {
      const chain = x5chain.map((der) => new X509Certificate(der))
      const anchors = trustedCertificates.map((der) => new X509Certificate(der))
      const at = now.getTime()
      for (const cert of [...chain, ...anchors]) {
        if (at < Date.parse(cert.validFrom) || at > Date.parse(cert.validTo)) {
          throw new Error(`certificate ${cert.subject} is not valid now`)
        }
      }
      for (let i = 0; i + 1 < chain.length; i++) {
        if (!chain[i].checkIssued(chain[i + 1]) || !chain[i].verify(chain[i + 1].publicKey)) {
          throw new Error('x5chain is not a chain')
        }
      }
      const top = chain[chain.length - 1]
      const anchor = anchors.find((a) => top.checkIssued(a) && top.verify(a.publicKey) && a.ca)
      if (!anchor) throw new Error('x5chain does not lead to a trusted certificate')
    },
    getCertificateData: ({ certificate }) => {
      const cert = new X509Certificate(certificate)
      return {
        issuerName: cert.issuer,
        subjectName: cert.subject,
        serialNumber: cert.serialNumber,
        thumbprint: cert.fingerprint256,
        notBefore: new Date(cert.validFrom),
        notAfter: new Date(cert.validTo),
        pem: cert.toString(),
      }
    },
  }
}

const cryptoContext = {
  random: (length) => new Uint8Array(randomBytes(length)),
  digest: ({ digestAlgorithm, bytes }) =>
    new Uint8Array(createHash(digestAlgorithm.replace('-', '').toLowerCase()).update(bytes).digest()),
  calculateEphemeralMacKeyJwk: () => {
    throw new Error('not needed for IssuerSigned')
  },
}

const coseContext = {
  sign1: { sign: sign1Sign, verify: sign1Verify },
  mac0: {
    sign: () => {
      throw new Error('not needed')
    },
    verify: () => {
      throw new Error('not needed')
    },
  },
}

function plain(value) {
  if (value instanceof DateOnly) return value.toISOString()
  if (value instanceof Date) return value.toISOString().replace('.000Z', 'Z')
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64url')
  if (value instanceof Map) return Object.fromEntries([...value].map(([k, v]) => [String(k), plain(v)]))
  if (Array.isArray(value)) return value.map(plain)
  return value
}

async function verify(request) {
  const bytes = new Uint8Array(Buffer.from(request.credential, 'base64url'))
  const now = request.now ? new Date(request.now) : new Date()
  const failed = []
  const onCheckG = (check) => {
    if (check.status === 'FAILED') failed.push(`${check.category}: ${check.check}`)
  }
  const document = parseIssuerSigned(bytes, request.doctype)
  const trustedCertificates = request.trusted.map((pem) => new Uint8Array(new X509Certificate(pem).raw))
  const ctx = { x509: x509Context(now), cose: coseContext, crypto: cryptoContext }
  const verifier = new Verifier()
  await verifier.verifyIssuerSignature(
    { trustedCertificates, issuerAuth: document.issuerSigned.issuerAuth, now, disableCertificateChainValidation: false, onCheckG },
    ctx,
  )
  await verifier.verifyData({ mdoc: document, onCheckG }, ctx)
  if (failed.length) return { ok: false, failed }
  const mso = document.issuerSigned.issuerAuth.decodedPayload
  const deviceKey = mso.deviceKeyInfo.deviceKey
  return {
    ok: true,
    doctype: document.docType,
    claims: plain(document.allIssuerSignedNamespaces),
    deviceKeyX: Buffer.from(deviceKey.get(-2)).toString('base64url'),
    digestAlgorithm: mso.digestAlgorithm,
  }
}

async function issue(request) {
  const document = new Document(request.doctype, { crypto: cryptoContext })
  for (const [namespace, elements] of Object.entries(request.namespaces)) {
    const values = { ...elements }
    for (const [ns, element] of request.dates ?? []) {
      if (ns === namespace && element in values) values[element] = new DateOnly(values[element])
    }
    document.addIssuerNameSpace(namespace, values)
  }
  const signed = await document
    .useDigestAlgorithm('SHA-256')
    .addValidityInfo({
      signed: new Date(request.validFrom),
      validFrom: new Date(request.validFrom),
      validUntil: new Date(request.validUntil),
    })
    .addDeviceKeyInfo({ deviceKey: request.deviceJwk })
    .sign(
      { issuerPrivateKey: request.signerJwk, issuerCertificate: request.certificatePem, alg: 'ES256' },
      { crypto: cryptoContext, cose: coseContext },
    )
  const issuerSigned = signed.prepare().get('issuerSigned')
  return { credential: Buffer.from(cborEncode(issuerSigned)).toString('base64url') }
}

let input = ''
for await (const chunk of process.stdin) input += chunk
const request = JSON.parse(input)
try {
  const out = request.op === 'verify' ? await verify(request) : await issue(request)
  process.stdout.write(`${JSON.stringify(out)}\n`)
} catch (err) {
  process.stdout.write(`${JSON.stringify({ ok: false, error: String(err?.message ?? err) })}\n`)
  process.exitCode = 1
}
