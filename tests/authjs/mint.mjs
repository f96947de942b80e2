// Mints and checks Auth.js session cookies with the real @auth/core, for tests/test_authjs.py.
//
// stdin: a JSON list of requests; stdout: a JSON list of results, in the same order.
//   {"op": "encode", "claims": {...}, "secret": "s" | ["new", "old"], "salt": "<cookie name>",
//    "maxAge": seconds}
//     -> {"token", "payload", "cookies": [{"name", "value"}]}
//     @auth/core's own encode(); cookies are what its SessionStore writes (chunked when large);
//     payload is the token read back at once by @auth/core's decode(), null if it refused it
//     (expired, not yet valid).
//   {"op": "craft", "claims", "secret", "salt", "maxAge", "enc": "A256GCM" | "A256CBC-HS512",
//    "kid": true | false}
//     -> {"token", "payload"}
//     Variants encode() never emits but @auth/core's decode() accepts (A256GCM, no kid): made
//     with the same jose + @panva/hkdf that @auth/core uses, and only returned after @auth/core's
//     decode() has accepted them.
//   {"op": "decode", "token", "secret", "salt"}
//     -> {"ok": true, "payload"} | {"ok": false, "error"}: @auth/core's verdict on a token.
import { hkdf } from "@panva/hkdf";
import { decode, encode } from "@auth/core/jwt";
import { EncryptJWT, base64url, calculateJwkThumbprint } from "jose";
// Not in @auth/core's package exports, so imported by path (the file getToken() uses).
import { SessionStore } from "./node_modules/@auth/core/lib/utils/cookie.js";

const KEY_LENGTH = { "A256CBC-HS512": 64, A256GCM: 32 };
const quietLogger = { debug() {}, warn() {}, error() {} };

async function craft({ claims, secret, salt, maxAge = 3600, enc = "A256CBC-HS512", kid = true }) {
  const length = KEY_LENGTH[enc];
  if (!length) throw new Error(`unknown enc ${enc}`);
  const key = await hkdf("sha256", secret, salt, `Auth.js Generated Encryption Key (${salt})`, length);
  const header = { alg: "dir", enc };
  if (kid) {
    header.kid = await calculateJwkThumbprint(
      { kty: "oct", k: base64url.encode(key) },
      `sha${key.byteLength << 3}`,
    );
  }
  const now = Math.floor(Date.now() / 1000);
  const token = await new EncryptJWT(claims)
    .setProtectedHeader(header)
    .setIssuedAt()
    .setExpirationTime(now + maxAge)
    .setJti(crypto.randomUUID())
    .encrypt(key);
  const payload = await decode({ token, secret, salt });
  if (!payload) throw new Error("@auth/core rejected a crafted token");
  return { token, payload };
}

async function handle(request) {
  switch (request.op) {
    case "encode": {
      const { claims, secret, salt, maxAge } = request;
      const token = await encode({ token: claims, secret, salt, maxAge });
      const payload = await decode({ token, secret, salt }).catch(() => null);
      const store = new SessionStore({ name: salt, options: {} }, {}, quietLogger);
      const cookies = store.chunk(token, {}).map(({ name, value }) => ({ name, value }));
      return { token, payload, cookies };
    }
    case "craft":
      return craft(request);
    case "decode": {
      try {
        const payload = await decode(request);
        return payload ? { ok: true, payload } : { ok: false, error: "empty" };
      } catch (error) {
        return { ok: false, error: String(error?.code ?? error?.name ?? error) };
      }
    }
    default:
      throw new Error(`unknown op ${request.op}`);
  }
}

let input = "";
for await (const chunk of process.stdin) input += chunk;
const requests = JSON.parse(input);
const results = [];
for (const request of requests) results.push(await handle(request));
process.stdout.write(JSON.stringify(results));
