package httpapi

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// clientAddr returns the client's IP and whether the request reached us
// over HTTPS. The socket peer is the client unless it is a trusted proxy;
// then the right-most X-Forwarded-For entry that is not a trusted proxy is,
// since everything left of it could be written by the client.
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
	if !s.trusted(peer) {
		return peer.String(), r.TLS != nil
	}
	secure := r.TLS != nil || strings.EqualFold(strings.TrimSpace(r.Header.Get("X-Forwarded-Proto")), "https")
	client := peer.String()
	entries := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(entries) - 1; i >= 0; i-- {
		entry := strings.TrimSpace(entries[i])
		if entry == "" {
			continue
		}
		a, ok := forwardedAddr(entry)
		if !ok {
			// Not an address ("unknown", garbage): key on the text itself
			// rather than lumping every client in with the proxy.
			return truncate(entry, 64), secure
		}
		client = a.String()
		if !s.trusted(a) {
			break
		}
	}
	return client, secure
}

// forwardedAddr reads an X-Forwarded-For entry, with or without a port or
// IPv6 brackets, as load balancers variously write it.
func forwardedAddr(entry string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(entry); err == nil {
		return ap.Addr().Unmap(), true
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(entry, "["), "]"))
	return a.Unmap(), err == nil
}

func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
