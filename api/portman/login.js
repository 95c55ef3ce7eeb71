// A login (POST /api/token/) before the request, for the operations of the
// contract run that need a session of their own (api/portman/portman-config.json
// defines `login` in the line before this file): login.user and login.password
// name the variables with the credentials, login.as the prefix of the variables
// that keep the token pair (<as>Access, <as>Refresh), and login.then, if set,
// runs with the pair before the request is sent.
pm.sendRequest({
    url: pm.variables.get('baseUrl') + '/api/token/',
    method: 'POST',
    header: { 'Content-Type': 'application/json' },
    body: {
        mode: 'raw',
        raw: JSON.stringify({ username: pm.variables.get(login.user), password: pm.variables.get(login.password) })
    }
}, function (err, res) {
    if (err || res.code !== 200) {
        throw new Error('contract run: login as ' + pm.variables.get(login.user) + ' failed: ' + (err || res.code + ' ' + res.text()));
    }
    const pair = res.json();
    pm.collectionVariables.set(login.as + 'Access', pair.access);
    pm.collectionVariables.set(login.as + 'Refresh', pair.refresh);
    if (login.then) {
        login.then(pair);
    }
});
