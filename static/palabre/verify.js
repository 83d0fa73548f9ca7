// Checks a seal in the browser, trusting nothing but WebCrypto and PROTOCOL.md:
// the Ed25519 signature over the canonical JSON of the document, the voter's receipt
// through its Merkle proof up to the signed root, and the bulletin board (recount and
// root). Each check answers {ok, reason}; `reason` says what failed.

const encoder = new TextEncoder();

/** Python's json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False). */
export function canonicalJSON(value) {
  if (value === null || typeof value === "boolean" || typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number") {
    // Seal documents carry integers only; a float would not print as Python prints it.
    if (!Number.isSafeInteger(value)) throw new TypeError("only safe integers are canonical");
    return String(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJSON).join(",")}]`;
  if (typeof value === "object") {
    const keys = Object.keys(value).sort(compareCodePoints);
    return `{${keys.map((key) => `${JSON.stringify(key)}:${canonicalJSON(value[key])}`).join(",")}}`;
  }
  throw new TypeError(`not JSON: ${typeof value}`);
}

// Python sorts str by code point; Array.prototype.sort compares UTF-16 code units, which
// differ for characters beyond U+FFFF.
function compareCodePoints(a, b) {
  const left = Array.from(a, (c) => c.codePointAt(0));
  const right = Array.from(b, (c) => c.codePointAt(0));
  for (let i = 0; i < Math.min(left.length, right.length); i += 1) {
    if (left[i] !== right[i]) return left[i] - right[i];
  }
  return left.length - right.length;
}

export function base64ToBytes(text) {
  const binary = atob(text);
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

export function bytesToHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function hexToBytes(hex) {
  if (typeof hex !== "string" || !/^([0-9a-f]{2})*$/.test(hex)) throw new TypeError("not lowercase hex");
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i += 1) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

export async function sha256Hex(bytes) {
  return bytesToHex(await sha256(bytes));
}

const LEAF = Uint8Array.of(0);
const NODE = Uint8Array.of(1);

export async function leafHash(receipt, ballotId, choice) {
  return sha256Hex(concat(LEAF, encoder.encode(`${receipt}\n${ballotId}\n${choice}`)));
}

/** The root a proof leads to from `leaf` (hex), or null when the proof is malformed. */
export async function rootFromProof(leaf, path) {
  let node;
  try {
    node = hexToBytes(leaf);
    if (node.length !== 32 || !Array.isArray(path)) return null;
    for (const step of path) {
      const sibling = hexToBytes(step.hash);
      if (sibling.length !== 32) return null;
      if (step.side === "left") node = await sha256(concat(NODE, sibling, node));
      else if (step.side === "right") node = await sha256(concat(NODE, node, sibling));
      else return null;
    }
  } catch {
    return null;
  }
  return bytesToHex(node);
}

/** The Merkle root of hex leaves: sorted, pairwise, an odd last node carried up. */
export async function merkleRoot(leaves) {
  if (leaves.length === 0) return sha256Hex(new Uint8Array(0));
  let level = [...leaves].sort().map(hexToBytes);
  while (level.length > 1) {
    const pairs = [];
    for (let i = 0; i + 1 < level.length; i += 2) pairs.push(sha256(concat(NODE, level[i], level[i + 1])));
    const next = await Promise.all(pairs);
    if (level.length % 2) next.push(level[level.length - 1]);
    level = next;
  }
  return bytesToHex(level[0]);
}

/** ceil(threshold × eligible) in integers, threshold a decimal string such as "0.75". */
export function acceptsNeeded(threshold, eligible) {
  const match = /^(\d+)(?:\.(\d+))?$/.exec(String(threshold));
  if (!match) throw new TypeError("bad threshold");
  const decimals = match[2] || "";
  const numerator = BigInt(match[1] + decimals);
  const denominator = 10n ** BigInt(decimals.length);
  const product = numerator * BigInt(eligible);
  return Number((product + denominator - 1n) / denominator);
}

const fail = (reason) => ({ ok: false, reason });
const pass = (extra = {}) => ({ ok: true, ...extra });

/** The signature of `seal` ({document, signature, key_id}) against the published keys. */
export async function verifySignature(seal, keys) {
  const key = (keys || []).find((k) => k.key_id === seal.key_id);
  if (!key) return fail("unknown_key");
  if (key.algorithm !== "Ed25519") return fail("unknown_algorithm");
  let publicKey;
  try {
    publicKey = await crypto.subtle.importKey("raw", base64ToBytes(key.public_key), { name: "Ed25519" }, false, ["verify"]);
  } catch {
    return fail("unsupported");
  }
  let message;
  let signature;
  try {
    message = encoder.encode(canonicalJSON(seal.document));
    signature = base64ToBytes(seal.signature);
  } catch {
    return fail("malformed");
  }
  const ok = await crypto.subtle.verify({ name: "Ed25519" }, publicKey, signature, message);
  return ok ? pass() : fail("bad_signature");
}

/** The signed counts agree with each other and with the threshold rule. */
export function verifyOutcome(document) {
  const { eligible, accept, refuse, threshold, outcome } = document;
  if (![eligible, accept, refuse].every((n) => Number.isSafeInteger(n) && n >= 0)) return fail("malformed");
  if (accept + refuse > eligible) return fail("too_many_votes");
  const needed = acceptsNeeded(threshold, eligible);
  const expected = accept >= needed ? "accepted" : "rejected";
  return outcome === expected ? pass({ needed }) : fail("outcome_mismatch");
}

/** The board: recount, recompute the root, compare both with the signed document. */
export async function verifyBoard(board, document) {
  if (!board || !Array.isArray(board.leaves)) return fail("malformed");
  if (String(board.ballot_id) !== String(document.ballot_id)) return fail("other_ballot");
  let accept = 0;
  let refuse = 0;
  for (const entry of board.leaves) {
    if (entry.choice === "accept") accept += 1;
    else if (entry.choice === "refuse") refuse += 1;
    else return fail("malformed");
  }
  if (accept !== document.accept || refuse !== document.refuse) return fail("count_mismatch");
  let root;
  try {
    root = await merkleRoot(board.leaves.map((entry) => entry.leaf));
  } catch {
    return fail("malformed");
  }
  if (root !== document.merkle_root) return fail("root_mismatch");
  return pass({ accept, refuse });
}

/** The voter's own vote: their leaf, through the proof, up to the signed root; and on the
 * board with the choice they made. */
export async function verifyReceipt({ receipt, ballotId, choice }, proof, document, board = null) {
  const leaf = await leafHash(receipt, ballotId, choice);
  if (!proof || proof.leaf !== leaf) return fail("leaf_mismatch");
  const root = await rootFromProof(leaf, proof.path);
  if (root === null) return fail("malformed");
  if (root !== document.merkle_root) return fail("root_mismatch");
  if (board && Array.isArray(board.leaves)) {
    const mine = board.leaves.find((entry) => entry.leaf === leaf);
    if (!mine) return fail("not_on_board");
    if (mine.choice !== choice) return fail("choice_mismatch");
  }
  return pass({ leaf });
}

/** The offer the members saw is the offer that was sealed. */
export async function verifyOfferHash(offer, document) {
  const { id, title, terms, amount_cents } = offer;
  if (title === null || terms === null) return fail("offer_unreadable");
  const hash = await sha256Hex(encoder.encode(canonicalJSON({ id, title, terms, amount_cents })));
  return hash === document.offer_hash ? pass() : fail("offer_mismatch");
}
