package httpapi

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// clientAddr returns the client's IP and whether the request reached us
// over HTTPS. The socket peer is the client unless it is a trusted proxy;
// then X-Forwarded-For names the client (forwardedClient).
//
// chi's ClientIPFromXFF walks the header the same way, but cannot stand in
// for this: it reads no entry with a port or brackets ("203.0.113.9:4711",
// as Azure's gateways append it, "[2001:db8::1]"), so every client of such
// a proxy would share the proxy's budget; it sets nothing for a trusted
// peer without the header, panics on an empty TRUSTED_PROXIES, and costs a
// request copy per request to put the address in the context.
func (s *Server) clientAddr(r *http.Request) (string, bool) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return host, r.TLS != nil
	}
	peer = peer.Unmap()
	if !s.trusted(peer.WithZone("")) {
		return peer.String(), r.TLS != nil
	}
	secure := r.TLS != nil || strings.EqualFold(strings.TrimSpace(r.Header.Get("X-Forwarded-Proto")), "https")
	return s.forwardedClient(r.Header["X-Forwarded-For"], peer).String(), secure
}

// forwardedClient walks X-Forwarded-For from the right, where each trusted
// proxy appended the address it took the request from, and returns the
// first address that is not a trusted proxy: everything left of it could
// be written by the client. Empty entries (stray commas) are skipped.
//
// An entry that is not an address ("unknown", garbage) ends the walk, and
// the client is the last address believed: the trusted hop that passed
// the entry on (at the least, the peer). Keying on the text instead would
// give whoever wrote it a fresh budget per spelling, and reading past it
// would believe what the client wrote. So every budget is an address.
func (s *Server) forwardedClient(values []string, peer netip.Addr) netip.Addr {
	client := peer
	for i := len(values) - 1; i >= 0; i-- {
		for v := values[i]; v != ""; {
			entry := v
			if j := strings.LastIndexByte(v, ','); j >= 0 {
				entry, v = v[j+1:], v[:j]
			} else {
				v = ""
			}
			entry = strings.TrimSpace(entry)
			if entry == "" {
				continue
			}
			a, ok := forwardedAddr(entry)
			if !ok {
				return client
			}
			client = a
			if !s.trusted(a) {
				return client
			}
		}
	}
	return client
}

// forwardedAddr reads an X-Forwarded-For entry, with or without a port or
// IPv6 brackets, as load balancers variously write it. An IPv6 zone names
// an interface of the host that wrote it, not a client, so it is dropped:
// "fe80::1%a" and "fe80::1%b" are one client, and a zone cannot hide a
// trusted proxy's address from the trust check.
func forwardedAddr(entry string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(entry, "["), "]"))
	if err != nil {
		ap, perr := netip.ParseAddrPort(entry)
		if perr != nil {
			return netip.Addr{}, false
		}
		a = ap.Addr()
	}
	return a.WithZone("").Unmap(), true
}

func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
