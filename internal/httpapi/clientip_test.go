package httpapi

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

// TestForwardedForForms: behind a trusted proxy, entries with ports or
// brackets name their client, zones and IPv4-mapped forms name the plain
// address, and an entry that is not an address is never its own client:
// the client is then the last address believed, the hop that passed it on.
func TestForwardedForForms(t *testing.T) {
	s := &Server{cfg: testConfig(t, map[string]string{"TRUSTED_PROXIES": "10.0.0.0/24,fd00::/16"})}
	for _, tt := range []struct {
		peer string
		xff  []string // one header line each
		want string
	}{
		{"10.0.0.1:5555", nil, "10.0.0.1"},
		{"10.0.0.1:5555", []string{"203.0.113.9"}, "203.0.113.9"},
		{"10.0.0.1:5555", []string{"203.0.113.9:4711"}, "203.0.113.9"},
		{"10.0.0.1:5555", []string{"[2001:db8::1]"}, "2001:db8::1"},
		{"10.0.0.1:5555", []string{"[2001:db8::1]:443"}, "2001:db8::1"},
		{"10.0.0.1:5555", []string{"198.51.100.1, 203.0.113.9"}, "203.0.113.9"},
		{"10.0.0.1:5555", []string{"198.51.100.1", "203.0.113.9"}, "203.0.113.9"},
		{"10.0.0.1:5555", []string{"203.0.113.9, 10.0.0.1"}, "203.0.113.9"},
		{"10.0.0.1:5555", []string{"10.0.0.3, 10.0.0.2"}, "10.0.0.3"}, // proxies all the way: the furthest one
		// Not addresses: the hop that handed them on is the client.
		{"10.0.0.1:5555", []string{"unknown"}, "10.0.0.1"},
		{"10.0.0.1:5555", []string{"garbage"}, "10.0.0.1"},
		{"10.0.0.1:5555", []string{"1.2.3.4, nonsense"}, "10.0.0.1"},
		{"10.0.0.1:5555", []string{"1.2.3.4", "nonsense"}, "10.0.0.1"},
		{"10.0.0.1:5555", []string{"198.51.100.1, garbage, 10.0.0.2"}, "10.0.0.2"},
		{"10.0.0.1:5555", []string{"garbage:80"}, "10.0.0.1"},
		{"10.0.0.1:5555", []string{"203.0.113.9%eth0"}, "10.0.0.1"},
		// Junk left of the client's entry is never read.
		{"10.0.0.1:5555", []string{"nonsense, 203.0.113.9"}, "203.0.113.9"},
		// Empty entries and lines are stray commas, not hops.
		{"10.0.0.1:5555", []string{""}, "10.0.0.1"},
		{"10.0.0.1:5555", []string{" , ,"}, "10.0.0.1"},
		{"10.0.0.1:5555", []string{"203.0.113.9,, "}, "203.0.113.9"},
		{"10.0.0.1:5555", []string{"203.0.113.9", ""}, "203.0.113.9"},
		// Zones and mapped forms: one client, and no disguise for a proxy.
		{"10.0.0.1:5555", []string{"2001:db8::1%eth0"}, "2001:db8::1"},
		{"10.0.0.1:5555", []string{"[2001:db8::1%eth0]:443"}, "2001:db8::1"},
		{"10.0.0.1:5555", []string{"203.0.113.9, fd00::1%eth0"}, "203.0.113.9"},
		{"10.0.0.1:5555", []string{"203.0.113.9, ::ffff:10.0.0.2"}, "203.0.113.9"},
		{"10.0.0.1:5555", []string{"[::ffff:203.0.113.9]:80"}, "203.0.113.9"},
		{"[fd00::9%eth0]:5555", []string{"203.0.113.9"}, "203.0.113.9"},
		{"[::ffff:10.0.0.1]:5555", []string{"203.0.113.9"}, "203.0.113.9"},
		// From an untrusted peer the header is not read.
		{"192.0.2.1:5555", []string{"203.0.113.9"}, "192.0.2.1"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tt.peer
		for _, v := range tt.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got, _ := s.clientAddr(r); got != tt.want {
			t.Errorf("peer %s, X-Forwarded-For %q: client = %q, want %q", tt.peer, tt.xff, got, tt.want)
		}
	}
}

// TestForwardedJunkBuysNoBudget: whatever a client behind a trusted proxy,
// or a trusted hop itself, writes into X-Forwarded-For, it spends one
// address's anonymous budget: junk, ports, zones and stray commas that
// change with every request never make a fresh budget.
func TestForwardedJunkBuysNoBudget(t *testing.T) {
	e := newEnv(t, map[string]string{"RATE_LIMIT_ANON": "2/minute", "TRUSTED_PROXIES": "10.99.0.0/16"})
	freshWindow(t)
	for _, tt := range []struct {
		name string
		peer string
		xff  func(i int) string
	}{
		// The proxy appends the client's address: the junk is left of it.
		{"junk before the client", "10.99.0.1", func(i int) string { return "junk-" + strconv.Itoa(i) + ", 203.0.113.70" }},
		{"address then junk before the client", "10.99.0.1", func(i int) string { return "1.2.3." + strconv.Itoa(i) + ", nonsense, 203.0.113.71" }},
		// What the trusted hop itself wrote is not an address: its own budget.
		{"junk from the hop", "10.99.0.2", func(i int) string { return "junk-" + strconv.Itoa(i) }},
		{"address then junk from the hop", "10.99.0.3", func(i int) string { return "1.2.3." + strconv.Itoa(i) + ", nonsense-" + strconv.Itoa(i) }},
		{"empty from the hop", "10.99.0.4", func(i int) string { return ", ,"[:i] }},
		// Forms of one address.
		{"ports", "10.99.0.1", func(i int) string { return "203.0.113.72:" + strconv.Itoa(4000+i) }},
		{"zones", "10.99.0.1", func(i int) string { return "2001:db8:72::1%eth" + strconv.Itoa(i) }},
		{"stray commas", "10.99.0.1", func(i int) string { return "203.0.113.73" + ", , "[:2*i] }},
	} {
		for i, want := range []int{http.StatusUnauthorized, http.StatusUnauthorized, http.StatusTooManyRequests} {
			xff := tt.xff(i)
			got := e.do(req{method: "GET", path: "/api/tasks/", ip: tt.peer, headers: map[string]string{"X-Forwarded-For": xff}}).Code
			if got != want {
				t.Errorf("%s: request %d (X-Forwarded-For %q): status = %d, want %d", tt.name, i+1, xff, got, want)
			}
		}
	}
}
