// The second-factor operations of the contract run, on a user of their own
// (api/portman/portman-config.json defines `mfa` in the line before this
// file): mfa.setup registers and logs in that user (mfaUsername, mfaUserId,
// mfaAccess); mfa.code sets totpCode to the current TOTP code of totpSecret
// (RFC 6238: HMAC-SHA1, 30 s steps, 6 digits), computed here; mfa.login
// signs the user in with the password and keeps the mfa_token of the
// mfa_required answer (mfaToken).
const base = pm.variables.get('baseUrl');
const post = (path, body, token, done) => pm.sendRequest({
    url: base + path,
    method: 'POST',
    header: Object.assign({ 'Content-Type': 'application/json' }, token ? { Authorization: 'Bearer ' + token } : {}),
    body: { mode: 'raw', raw: JSON.stringify(body) }
}, function (err, res) {
    if (err) { throw new Error('contract run: POST ' + path + ' failed: ' + err); }
    done(res);
});

function totp(secret, unixSeconds) {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
    let bits = '';
    for (const ch of secret.replace(/=+$/, '').toUpperCase()) {
        bits += alphabet.indexOf(ch).toString(2).padStart(5, '0');
    }
    let keyHex = '';
    for (let i = 0; i + 8 <= bits.length; i += 8) {
        keyHex += parseInt(bits.slice(i, i + 8), 2).toString(16).padStart(2, '0');
    }
    const counter = Math.floor(unixSeconds / 30).toString(16).padStart(16, '0');
    const mac = CryptoJS.HmacSHA1(CryptoJS.enc.Hex.parse(counter), CryptoJS.enc.Hex.parse(keyHex)).toString();
    const off = parseInt(mac.slice(-1), 16);
    const value = parseInt(mac.substr(off * 2, 8), 16) & 0x7fffffff;
    return String(value % 1000000).padStart(6, '0');
}

if (mfa.setup) {
    const username = 'contract_mfa_' + Date.now();
    const password = pm.variables.get('mfaPassword');
    post('/api/register/', { username: username, password: password }, null, function (res) {
        if (res.code !== 201) { throw new Error('contract run: registering the second-factor user: ' + res.code + ' ' + res.text()); }
        pm.collectionVariables.set('mfaUsername', username);
        pm.collectionVariables.set('mfaUserId', res.json().id);
        post('/api/token/', { username: username, password: password }, null, function (res) {
            if (res.code !== 200) { throw new Error('contract run: login of the second-factor user: ' + res.code + ' ' + res.text()); }
            pm.collectionVariables.set('mfaAccess', res.json().access);
        });
    });
}
if (mfa.code) {
    pm.collectionVariables.set('totpCode', totp(pm.variables.get('totpSecret'), Date.now() / 1000));
}
if (mfa.login) {
    post('/api/token/', { username: pm.variables.get('mfaUsername'), password: pm.variables.get('mfaPassword') }, null, function (res) {
        const body = res.json();
        if (res.code !== 401 || !body.error || body.error.code !== 'mfa_required') {
            throw new Error('contract run: the second-factor user must get mfa_required: ' + res.code + ' ' + res.text());
        }
        pm.collectionVariables.set('mfaToken', body.error.mfa.token);
    });
}
