// The browser verifier of health codes (HCQ1) and of the signed lists.
//
// It implements codes/README.md exactly as codes/verify.py does: the same checks in the
// same order, the first failure is the reason. Where Python decodes CBOR and then
// demands that re-encoding gives back the same bytes, this file accepts exactly those
// bytes, the deterministic encoding of the one shape a code may have, and nothing else:
// the set of inputs passed and refused at each step is the same. The conformance
// vectors (tests/vectors) are run through this page in Chromium to hold it to that.

export const PREFIX = "HCQ1:";
export const MAX_COSE_BYTES = 4096;
const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";
const B45 = new Int8Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) B45[ALPHABET.charCodeAt(i)] = i;
const MAX_EPOCH = 253402300799; // 9999-12-31T23:59:59Z
const PSEUDONYM = /^[A-Za-z0-9_-]{1,64}$/;
const RULE_SET = /^[A-Za-z0-9_.-]{1,64}@[A-Za-z0-9_.+-]{1,32}$/;
const LEVELS = ["green", "yellow", "red"];
const ALGORITHMS = { [-8]: "EdDSA", [-7]: "ES256" };
// Reasons from NOT_YET_VALID on: a trusted, usable key signed the claims.
const VERIFIED = new Set(["NOT_YET_VALID", "EXPIRED", "REVOKED", "LEVEL_NOT_ADMITTED", "OK"]);
const utf8 = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();

class Refusal extends Error {}

/** Whether a verdict's claims may be shown as facts. */
export function claimsVerified(reason) {
  return VERIFIED.has(reason);
}

// ---- Base45 (RFC 9285), strict -------------------------------------------------------

function b45decode(text) {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) throw new Refusal("BASE45_INVALID");
  if (text.length % 3 === 1) throw new Refusal("BASE45_INVALID");
  const values = new Int8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    values[i] = B45[text.charCodeAt(i)];
    if (values[i] < 0) throw new Refusal("BASE45_INVALID");
  }
  const whole = text.length - (text.length % 3);
  const out = new Uint8Array((whole / 3) * 2 + (text.length % 3 === 2 ? 1 : 0));
  let o = 0;
  for (let i = 0; i < whole; i += 3) {
    const value = values[i] + 45 * values[i + 1] + 2025 * values[i + 2];
    if (value > 0xffff) throw new Refusal("BASE45_INVALID");
    out[o++] = value >> 8;
    out[o++] = value & 0xff;
  }
  if (text.length % 3 === 2) {
    const value = values[whole] + 45 * values[whole + 1];
    if (value > 0xff) throw new Refusal("BASE45_INVALID");
    out[o] = value;
  }
  return out;
}

// ---- zlib (RFC 1950), bounded ----------------------------------------------------------

async function inflate(compressed) {
  const stream = new DecompressionStream("deflate");
  const writer = stream.writable.getWriter();
  writer.write(compressed).catch(() => {});
  writer.close().catch(() => {});
  const reader = stream.readable.getReader();
  const chunks = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
      if (total > MAX_COSE_BYTES) {
        reader.cancel().catch(() => {});
        throw new Refusal("DECOMPRESS_FAILED");
      }
      chunks.push(value);
    }
  } catch {
    // Damaged, truncated, trailing bytes after the stream, or too large: all one reason.
    throw new Refusal("DECOMPRESS_FAILED");
  }
  const out = new Uint8Array(total);
  let o = 0;
  for (const chunk of chunks) {
    out.set(chunk, o);
    o += chunk.length;
  }
  return out;
}

// ---- deterministic CBOR, only the shapes a code has ------------------------------------

class Cursor {
  constructor(bytes) {
    this.bytes = bytes;
    this.at = 0;
  }
  byte() {
    if (this.at >= this.bytes.length) throw new Refusal("CBOR");
    return this.bytes[this.at++];
  }
  take(n) {
    if (n > this.bytes.length - this.at) throw new Refusal("CBOR");
    const out = this.bytes.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }
  done() {
    return this.at === this.bytes.length;
  }
  // A head of `major` with a shortest-form argument (as cbor2 writes it); returns the
  // argument as a Number (never above 2**53 for the lengths and times a code holds).
  head(major) {
    const initial = this.byte();
    if (initial >> 5 !== major) throw new Refusal("CBOR");
    const info = initial & 0x1f;
    if (info < 24) return info;
    const size = { 24: 1, 25: 2, 26: 4, 27: 8 }[info];
    if (size === undefined) throw new Refusal("CBOR"); // reserved or indefinite
    let value = 0;
    for (const b of this.take(size)) value = value * 256 + b;
    const least = { 1: 24, 2: 0x100, 4: 0x10000, 8: 0x100000000 }[size];
    if (value < least) throw new Refusal("CBOR"); // not the shortest form
    return value;
  }
  bstr() {
    return this.take(this.head(2));
  }
  tstr() {
    return utf8.decode(this.take(this.head(3)));
  }
  uint() {
    return this.head(0);
  }
  // An integer as cbor2 encodes any Python int: major 0 or 1 up to 64 bits, a tag 2/3
  // bignum beyond. Returns a Number when it is small, otherwise null (not an algorithm).
  integer() {
    const initial = this.bytes[this.at];
    if (initial >> 5 === 0) return this.uint();
    if (initial >> 5 === 1) return -1 - this.head(1);
    if (initial === 0xc2 || initial === 0xc3) {
      this.at++;
      const magnitude = this.bstr();
      if (magnitude.length < 9 || magnitude[0] === 0) throw new Refusal("CBOR");
      return null;
    }
    throw new Refusal("CBOR");
  }
  expect(...bytes) {
    for (const b of bytes) if (this.byte() !== b) throw new Refusal("CBOR");
  }
}

function decodeSign1(cose) {
  // 18([protected: bstr, unprotected: {}, payload: bstr, signature: bstr])
  const c = new Cursor(cose);
  let protectedHeader, payload, signature;
  try {
    c.expect(0xd2, 0x84);
    protectedHeader = c.bstr();
    c.expect(0xa0);
    payload = c.bstr();
    signature = c.bstr();
    if (!c.done()) throw new Refusal("CBOR");
  } catch {
    throw new Refusal("COSE_INVALID");
  }
  // {1: alg, 4: kid}
  const h = new Cursor(protectedHeader);
  let alg, kid;
  try {
    h.expect(0xa2, 0x01);
    alg = h.integer();
    h.expect(0x04);
    kid = h.bstr();
    if (!h.done()) throw new Refusal("CBOR");
  } catch {
    throw new Refusal("COSE_INVALID");
  }
  return { protectedHeader, alg, kid, payload, signature };
}

function decodeClaims(payload) {
  // {1: iss, 2: sub, 4: exp, 6: iat, -65537: level, -65538: rule_set}, in that order.
  const c = new Cursor(payload);
  try {
    c.expect(0xa6, 0x01);
    const issuer = c.tstr();
    c.expect(0x02);
    const person = c.tstr();
    c.expect(0x04);
    const expiresAt = c.uint();
    c.expect(0x06);
    const issuedAt = c.uint();
    c.expect(0x3a, 0x00, 0x01, 0x00, 0x00);
    const level = c.tstr();
    c.expect(0x3a, 0x00, 0x01, 0x00, 0x01);
    const ruleSet = c.tstr();
    if (!c.done()) throw new Refusal("CBOR");
    const issuerLength = [...issuer].length; // code points, as Python counts
    if (issuerLength < 1 || issuerLength > 64) throw new Refusal("CBOR");
    if (!PSEUDONYM.test(person) || !LEVELS.includes(level) || !RULE_SET.test(ruleSet)) throw new Refusal("CBOR");
    if (issuedAt > MAX_EPOCH || expiresAt > MAX_EPOCH || expiresAt <= issuedAt) throw new Refusal("CBOR");
    return { issuer, person, level, ruleSet, issuedAt, expiresAt };
  } catch {
    throw new Refusal("CLAIMS_INVALID");
  }
}

function bstrHead(length) {
  if (length < 24) return [0x40 | length];
  if (length < 0x100) return [0x58, length];
  return [0x59, length >> 8, length & 0xff];
}

function sigStructure(protectedHeader, payload) {
  // ["Signature1", protected, h'', payload]
  const label = encoder.encode("Signature1");
  const parts = [
    Uint8Array.of(0x84, 0x60 | label.length), label,
    Uint8Array.from(bstrHead(protectedHeader.length)), protectedHeader,
    Uint8Array.of(0x40),
    Uint8Array.from(bstrHead(payload.length)), payload,
  ];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

// ---- keys ------------------------------------------------------------------------------

const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

async function verifySignature(key, signature, message) {
  try {
    if (key.alg === "EdDSA") return await crypto.subtle.verify({ name: "Ed25519" }, key.cryptoKey, signature, message);
    if (signature.length !== 64) return false;
    return await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, key.cryptoKey, signature, message);
  } catch {
    return false;
  }
}

async function revocationId(alg, signature) {
  const signed = alg === "ES256" ? signature.subarray(0, 32) : signature;
  return hex((await sha256(signed)).subarray(0, 16));
}

// ---- the verdict -----------------------------------------------------------------------

/**
 * Verify code text against a parsed trust list at `at` (epoch seconds).
 * Returns {reason, level, claims, kid}; `claims` and `level` only when claimsVerified(reason).
 * Never throws for any text.
 */
export async function verifyCode(text, { trust, revoked = new Set(), admit = ["green"], at }) {
  const refused = (reason, extra = {}) => ({ reason, level: null, claims: null, kid: null, ...extra });
  if (typeof text !== "string" || !text.startsWith(PREFIX)) return refused("MALFORMED_PREFIX");
  let compressed, cose, message, claims;
  try {
    compressed = b45decode(text.slice(PREFIX.length));
    cose = await inflate(compressed);
    message = decodeSign1(cose);
  } catch (error) {
    if (error instanceof Refusal) return refused(error.message);
    throw error;
  }
  const kid = hex(message.kid);
  try {
    claims = decodeClaims(message.payload);
  } catch {
    return refused("CLAIMS_INVALID", { kid });
  }
  const alg = ALGORITHMS[message.alg];
  if (alg === undefined) return refused("UNSUPPORTED_ALGORITHM", { kid });
  const candidates = trust.byKid.get(kid) ?? [];
  if (candidates.length === 0) return refused("UNKNOWN_KEY", { kid });
  const toBeSigned = sigStructure(message.protectedHeader, message.payload);
  const signers = [];
  for (const key of candidates) {
    if (key.alg === alg && (await verifySignature(key, message.signature, toBeSigned))) signers.push(key);
  }
  if (signers.length === 0) return refused("SIGNATURE_INVALID", { kid });
  if (signers.every((key) => key.status === "revoked")) return refused("KEY_REVOKED", { kid });
  const maySign = (key) =>
    key.status === "active" && key.validFrom <= claims.issuedAt && claims.issuedAt < key.validUntil && claims.expiresAt <= key.validUntil;
  if (!signers.some(maySign)) return refused("KEY_NOT_VALID", { kid });
  const verdict = (reason) => ({ reason, level: claims.level, claims, kid });
  if (at < claims.issuedAt) return verdict("NOT_YET_VALID");
  if (at >= claims.expiresAt) return verdict("EXPIRED");
  if (revoked.has(await revocationId(alg, message.signature))) return verdict("REVOKED");
  if (!admit.includes(claims.level)) return verdict("LEVEL_NOT_ADMITTED");
  return verdict("OK");
}

// ---- lists -----------------------------------------------------------------------------

export class ListError extends Error {}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|z|[+-]\d{2}:\d{2})$/;

function epoch(text, what) {
  const ms = typeof text === "string" && RFC3339.test(text) ? Date.parse(text) : NaN;
  if (Number.isNaN(ms)) throw new ListError(`${what} is not an RFC 3339 time`);
  return Math.floor(ms / 1000);
}

function exactly(object, fields, what) {
  if (object === null || typeof object !== "object" || Array.isArray(object)) throw new ListError(`${what} is not an object`);
  const names = Object.keys(object).sort();
  if (names.join() !== [...fields].sort().join()) throw new ListError(`${what} must have exactly ${fields.join(", ")}`);
}

function base64(text, what) {
  if (typeof text !== "string" || !/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(text)) {
    throw new ListError(`${what} is not Base64`);
  }
  return Uint8Array.from(atob(text), (ch) => ch.charCodeAt(0));
}

const RECORD_FIELDS = ["kid", "alg", "public_key", "valid_from", "valid_until", "status"];

/** A public key record (trust list entry, list signer, pinned key) made usable. */
export async function importKeyRecord(record) {
  exactly(record, RECORD_FIELDS, "a key record");
  const { kid, alg, status } = record;
  if (typeof kid !== "string" || !/^[0-9a-f]{16}$/.test(kid)) throw new ListError("kid must be 16 lowercase hex digits");
  if (alg !== "EdDSA" && alg !== "ES256") throw new ListError(`key ${kid}: unknown algorithm`);
  if (status !== "active" && status !== "revoked") throw new ListError(`key ${kid}: unknown status`);
  const der = base64(record.public_key, `key ${kid}: public_key`);
  const validFrom = epoch(record.valid_from, `key ${kid}: valid_from`);
  const validUntil = epoch(record.valid_until, `key ${kid}: valid_until`);
  if (validUntil <= validFrom) throw new ListError(`key ${kid}: valid_until must be after valid_from`);
  if (hex((await sha256(der)).subarray(0, 8)) !== kid) throw new ListError(`kid ${kid} is not the key id of its public key`);
  let cryptoKey;
  try {
    const algorithm = alg === "EdDSA" ? { name: "Ed25519" } : { name: "ECDSA", namedCurve: "P-256" };
    cryptoKey = await crypto.subtle.importKey("spki", der, algorithm, false, ["verify"]);
  } catch {
    throw new ListError(`key ${kid}: public key is not an ${alg} key`);
  }
  return { kid, alg, status, validFrom, validUntil, der: record.public_key, cryptoKey };
}

function listTimes(document, what) {
  const issuedAt = epoch(document.issued_at, `${what} issued_at`);
  const nextUpdate = epoch(document.next_update, `${what} next_update`);
  if (nextUpdate <= issuedAt) throw new ListError(`${what}: next_update must be after issued_at`);
  return { issuedAt, nextUpdate };
}

/** The trust list of a signed list's body. */
export async function parseTrustList(body) {
  const document = JSON.parse(utf8.decode(body));
  exactly(document, ["format", "issued_at", "next_update", "keys"], "the trust list");
  if (document.format !== "healthcode-trust-list/2") throw new ListError("not a trust list (format)");
  if (!Array.isArray(document.keys)) throw new ListError("trust list keys must be an array");
  const byKid = new Map();
  for (const record of document.keys) {
    const key = await importKeyRecord(record);
    byKid.set(key.kid, [...(byKid.get(key.kid) ?? []), key]);
  }
  return { byKid, ...listTimes(document, "trust list") };
}

/** The revocation list of a signed list's body. */
export function parseRevocationList(body) {
  const document = JSON.parse(utf8.decode(body));
  exactly(document, ["format", "issued_at", "next_update", "revoked"], "the revocation list");
  if (document.format !== "healthcode-revocation-list/2") throw new ListError("not a revocation list (format)");
  if (!Array.isArray(document.revoked) || !document.revoked.every((id) => typeof id === "string" && /^[0-9a-f]{32}$/.test(id))) {
    throw new ListError("revoked must be an array of revocation ids");
  }
  return { ids: new Set(document.revoked), ...listTimes(document, "revocation list") };
}

/**
 * The body of a signed list, checked: its signature holds under the signer it names,
 * and that signer is the pinned key when one is given. Throws ListError otherwise.
 */
export async function openSignedList(text, pinned) {
  let envelope;
  try {
    envelope = JSON.parse(text);
  } catch {
    throw new ListError("not JSON");
  }
  exactly(envelope, ["format", "signer", "list", "signature"], "a signed list");
  if (envelope.format !== "healthcode-signed-list/1") throw new ListError("not a signed list (format)");
  const signer = await importKeyRecord(envelope.signer);
  if (pinned && (signer.kid !== pinned.kid || signer.der !== pinned.der)) {
    throw new ListError(`signed by key ${signer.kid}, not by the pinned list-signing key ${pinned.kid}`);
  }
  const body = base64(envelope.list, "list");
  const signature = base64(envelope.signature, "signature");
  if (!(await verifySignature(signer, signature, body))) {
    throw new ListError("the signature does not match the list (tampered with, or damaged)");
  }
  return { body, signer };
}
