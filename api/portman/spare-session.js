// deleteSession revokes a spare session of the contract user, not the one the
// rest of the run uses: log in once more, then find that login's session id
// (the session marked `current` when its own token lists the sessions).
const login = {
    user: 'username',
    password: 'password',
    as: 'spare',
    then: function (pair) {
        pm.sendRequest({
            url: pm.variables.get('baseUrl') + '/api/sessions/',
            method: 'GET',
            header: { Authorization: 'Bearer ' + pair.access }
        }, function (err, res) {
            const mine = !err && res.code === 200 && res.json().results.find(function (s) { return s.current; });
            if (!mine) {
                throw new Error('contract run: no current session in GET /api/sessions/: ' + (err || res.code + ' ' + res.text()));
            }
            pm.collectionVariables.set('spareSessionId', mine.id);
        });
    }
};
