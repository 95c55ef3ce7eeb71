// The OAuth sign-in flow up to a page, for the contract run's OAuth pages
// (api/portman/portman-config.json defines `flow` in the line before this
// file): GET /oauth/authorize for the contract's client, then, when
// flow.signIn is set, POST /oauth/login as the admin. It keeps
// the page's form fields (oauthId, oauthCsrf) and the flow cookie
// (oauthCookie) in collection variables; flow.then, if set, runs after.
const base = pm.variables.get('baseUrl');
const challenge = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM'; // RFC 7636 appendix B
const query = 'response_type=code&client_id=' + encodeURIComponent(pm.variables.get('oauthClient')) +
    '&redirect_uri=' + encodeURIComponent(base + '/healthz') + '&scope=' + encodeURIComponent(pm.variables.get('oauthScope')) +
    '&state=contract&code_challenge=' + challenge + '&code_challenge_method=S256';
const field = (html, name) => {
    const m = html.match(new RegExp('name="' + name + '" value="([^"]*)"'));
    if (!m) {
        throw new Error('contract run: no ' + name + ' field in the OAuth page: ' + html.slice(0, 200));
    }
    return m[1];
};
const keep = (res) => {
    const html = res.text();
    pm.collectionVariables.set('oauthId', field(html, 'id'));
    pm.collectionVariables.set('oauthCsrf', field(html, 'csrf'));
};
pm.sendRequest({ url: base + '/oauth/authorize?' + query, method: 'GET' }, function (err, res) {
    if (err || res.code !== 200) {
        throw new Error('contract run: GET /oauth/authorize failed: ' + (err || res.code + ' ' + res.text()));
    }
    const cookie = res.headers.all().filter(h => h.key.toLowerCase() === 'set-cookie').map(h => h.value.split(';')[0])[0];
    if (cookie) {
        pm.collectionVariables.set('oauthCookie', cookie);
    }
    keep(res);
    if (!flow.signIn) {
        return flow.then && flow.then();
    }
    pm.sendRequest({
        url: base + '/oauth/login', method: 'POST',
        header: { 'Content-Type': 'application/x-www-form-urlencoded', 'Cookie': pm.variables.get('oauthCookie') },
        body: { mode: 'urlencoded', urlencoded: [
            { key: 'csrf', value: pm.variables.get('oauthCsrf') }, { key: 'id', value: pm.variables.get('oauthId') },
            { key: 'username', value: pm.variables.get('adminUsername') }, { key: 'password', value: pm.variables.get('adminPassword') }] }
    }, function (err, res) {
        if (err || res.code !== 200) {
            throw new Error('contract run: POST /oauth/login failed: ' + (err || res.code + ' ' + res.text()));
        }
        keep(res);
        return flow.then && flow.then();
    });
});
