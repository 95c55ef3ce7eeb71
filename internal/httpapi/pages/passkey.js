// The sign-in page's passkey button: it asks the browser for an assertion
// to the options the page carries, and posts it in the second-step form.
// The page's CSP allows this one file and no inline script.
"use strict";
(function () {
  const button = document.getElementById("passkey-button");
  if (!button || !window.PublicKeyCredential) {
    return;
  }
  const b64 = (s) => Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
  const text = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf)))
    .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  button.hidden = false;
  button.addEventListener("click", async () => {
    const form = document.getElementById("passkey-form");
    const status = document.getElementById("passkey-status");
    const pk = JSON.parse(button.dataset.options).publicKey;
    pk.challenge = b64(pk.challenge);
    (pk.allowCredentials || []).forEach((c) => { c.id = b64(c.id); });
    try {
      const cred = await navigator.credentials.get({ publicKey: pk });
      const r = cred.response;
      form.elements.passkey.value = JSON.stringify({
        id: cred.id, rawId: text(cred.rawId), type: cred.type,
        authenticatorAttachment: cred.authenticatorAttachment,
        clientExtensionResults: cred.getClientExtensionResults(),
        response: {
          clientDataJSON: text(r.clientDataJSON), authenticatorData: text(r.authenticatorData),
          signature: text(r.signature), userHandle: r.userHandle ? text(r.userHandle) : null,
        },
      });
      form.submit();
    } catch (e) {
      status.textContent = "The passkey was not used. Try again, or enter a code.";
    }
  });
})();
