/**
 * Content negotiation on an Accept header (RFC 9110 §12.5.1): of the media types an endpoint
 * offers, the one the client weighs highest, each offer taking the quality (`q`) of the most
 * specific range that matches it (`type/subtype`, then `type/*`, then `*\/*`). Parameters other
 * than `q` are ignored. On a tie the earlier offer wins, and the first offer is the answer when
 * the header is absent or accepts none of the offers: an endpoint then answers in its default
 * type rather than 406, as CCF's do.
 */

interface AcceptRange {
  readonly type: string;
  readonly subtype: string;
  readonly quality: number;
}

function parseRange(text: string): AcceptRange | null {
  const [mediaType = "", ...params] = text.split(";");
  const slash = mediaType.indexOf("/");
  if (slash < 0) return null;
  const type = mediaType.slice(0, slash).trim().toLowerCase();
  const subtype = mediaType
    .slice(slash + 1)
    .trim()
    .toLowerCase();
  if (type === "" || subtype === "" || (type === "*" && subtype !== "*")) return null;
  let quality = 1;
  for (const param of params) {
    const eq = param.indexOf("=");
    if (eq < 0 || param.slice(0, eq).trim().toLowerCase() !== "q") continue;
    const value = Number(param.slice(eq + 1).trim());
    quality = Number.isFinite(value) && value >= 0 && value <= 1 ? value : 0;
  }
  return { type, subtype, quality };
}

/** 3 for an exact match, 2 for `type/*`, 1 for `*\/*`, 0 for none. */
function specificity(range: AcceptRange, type: string, subtype: string): number {
  if (range.type === "*") return 1;
  if (range.type !== type) return 0;
  if (range.subtype === "*") return 2;
  return range.subtype === subtype ? 3 : 0;
}

/** The quality `ranges` give `offer` (0 when none matches). */
function qualityOf(ranges: readonly AcceptRange[], offer: string): number {
  const [type = "", subtype = ""] = offer.split("/");
  let best = 0;
  let quality = 0;
  for (const range of ranges) {
    const s = specificity(range, type, subtype);
    if (s > best) {
      best = s;
      quality = range.quality;
    }
  }
  return quality;
}

/** The offer to answer with (see above); `offers` is not empty, the default first. */
export function negotiate(
  accept: string | undefined,
  offers: readonly [string, ...string[]],
): string {
  const ranges: AcceptRange[] = [];
  for (const text of (accept ?? "").split(",")) {
    const range = parseRange(text);
    if (range !== null) ranges.push(range);
  }
  if (ranges.length === 0) return offers[0];
  let chosen = offers[0];
  let chosenQuality = 0;
  for (const offer of offers) {
    const quality = qualityOf(ranges, offer);
    if (quality > chosenQuality) {
      chosen = offer;
      chosenQuality = quality;
    }
  }
  return chosen;
}
