/**
 * The "Signing identity" panel: a member opens their certificate and private key files (PEM);
 * the page imports the key into WebCrypto (client.ts) and signs governance requests with it.
 * Nothing is uploaded: the files are read in the page.
 */
import { currentSigner, forgetIdentity, onIdentityChange, openIdentity } from "./client.js";
import { errorBox, h, replace, section, shortId } from "./dom.js";

export function identityPanel(signal: AbortSignal): HTMLElement {
  const status = h("div", { role: "status", "aria-live": "polite" });
  const show = () => {
    const signer = currentSigner();
    replace(
      status,
      signer === null
        ? h("p", { class: "muted" }, "No member identity opened: proposals and votes need one.")
        : h("p", { class: "ok" }, "Signing as member ", shortId(signer.memberId), "."),
    );
  };
  onIdentityChange(show, signal);
  const certInput = h("input", {
    id: "member-cert",
    type: "file",
    accept: ".pem,.crt",
    required: true,
  });
  const keyInput = h("input", {
    id: "member-key",
    type: "file",
    accept: ".pem,.key",
    required: true,
  });
  const submit = async (event: Event) => {
    event.preventDefault();
    const cert = certInput.files?.[0];
    const key = keyInput.files?.[0];
    if (cert === undefined || key === undefined) return;
    try {
      await openIdentity(cert, key);
      keyInput.value = "";
    } catch (err: unknown) {
      replace(status, errorBox(err));
    }
  };
  show();
  return section(
    "identity",
    "Signing identity",
    h(
      "p",
      { class: "muted" },
      "Your key is read and used in this page only (WebCrypto); it is never sent anywhere.",
    ),
    h(
      "form",
      {
        class: "inline",
        onsubmit: (e: Event) => void submit(e),
        "aria-label": "Open a member identity",
      },
      h("label", { for: "member-cert" }, "Member certificate"),
      certInput,
      h("label", { for: "member-key" }, "Private key"),
      keyInput,
      h("button", { type: "submit" }, "Use identity"),
      h(
        "button",
        { type: "button", class: "secondary", onclick: () => forgetIdentity() },
        "Forget",
      ),
    ),
    status,
  );
}
