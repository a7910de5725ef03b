// Token Status List interop glue over @sd-jwt/jwt-status-list (draft-ietf-oauth-status-list).
//
//   node status_list.mjs read   < {"token", "jwk", "credential"?, "indices"?}
//     Verifies the Status List Token's ES256 signature with `jwk` (Node webcrypto), decodes
//     its list with the package's getListFromStatusListJWT, reads the credential's reference
//     with getStatusListFromJWT, and prints
//     {"typ", "sub", "bits", "reference", "status", "statuses"}: `status` is the entry the
//     credential points at, `statuses` the entries at `indices`.
//   node status_list.mjs mint   < {"uri", "bits", "size", "set": [[idx, value], ...]}
//     Builds a StatusList with the package, wraps it with createHeaderAndPayload, signs it
//     (ES256, a fresh key) and prints {"token", "jwk"}.
import { StatusList, createHeaderAndPayload, getListFromStatusListJWT, getStatusListFromJWT } from '@sd-jwt/jwt-status-list'
import { decodeJws, generateEs256Key, signJws, verifyEs256Jws } from './common.mjs'

async function readStdin() {
  const chunks = []
  for await (const chunk of process.stdin) chunks.push(chunk)
  return JSON.parse(Buffer.concat(chunks).toString('utf8'))
}

async function read(input) {
  await verifyEs256Jws(input.token, input.jwk)
  const { header, payload } = decodeJws(input.token)
  const list = getListFromStatusListJWT(input.token)
  const out = {
    typ: header.typ,
    sub: payload.sub,
    bits: list.getBitsPerStatus(),
    statuses: (input.indices ?? []).map((i) => list.getStatus(i)),
  }
  if (input.credential) {
    const reference = getStatusListFromJWT(input.credential.split('~')[0])
    out.reference = reference
    out.status = list.getStatus(reference.idx)
  }
  return out
}

async function mint(input) {
  const list = new StatusList(new Array(input.size).fill(0), input.bits)
  for (const [idx, value] of input.set) list.setStatus(idx, value)
  const key = await generateEs256Key('node-status-key')
  const now = Math.floor(Date.now() / 1000)
  const { header, payload } = createHeaderAndPayload(
    list,
    { iss: input.iss, sub: input.uri, iat: now, exp: now + 3600, ttl: 300 },
    { alg: 'ES256', typ: 'statuslist+jwt', kid: key.publicJwk.kid },
  )
  return { token: await signJws(key.privateKey, header, payload), jwk: key.publicJwk }
}

const mode = process.argv[2]
try {
  const input = await readStdin()
  const out = mode === 'read' ? await read(input) : mode === 'mint' ? await mint(input) : null
  if (out === null) throw new Error(`unknown mode ${mode}`)
  console.log(JSON.stringify(out))
} catch (err) {
  console.log(JSON.stringify({ error: String(err && err.message ? err.message : err) }))
  process.exitCode = 1
}
