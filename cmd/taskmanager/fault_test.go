package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/acme/taskmanager/internal/logtest"
	"github.com/acme/taskmanager/internal/pgtest"
	"github.com/acme/taskmanager/internal/redistest"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startAt runs `taskmanager serve` on addr, as a process of its own, and
// waits for its /healthz.
func startAt(t *testing.T, env map[string]string, addr string) *process {
	t.Helper()
	env = maps.Clone(env)
	// Three instances on one host cannot all take the default metrics port.
	env["LISTEN_ADDR"], env["METRICS_ADDR"] = addr, "127.0.0.1:0"
	cmd, exited := spawnServe(t, env)
	if !waitHealthy(t, &http.Client{Timeout: time.Second}, "http://"+addr+"/healthz", exited) {
		t.Fatalf("the instance on %s exited before it answered", addr)
	}
	return &process{base: "http://" + addr, cmd: cmd}
}

// loadDriver sends task creations through the load balancer and records
// every acknowledged one (its id) and every status with its time.
type loadDriver struct {
	base   string
	tokens []string
	client *http.Client
	seq    *atomic.Int64
	phase  string

	mu       sync.Mutex
	sent     int
	acked    map[string]string // task id -> title
	statuses map[int]int
	answers  []answerAt
}

type answerAt struct {
	at   time.Time
	code int
}

func (d *loadDriver) run(stop <-chan struct{}, workers int) (done <-chan struct{}) {
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				n := d.seq.Add(1)
				title := fmt.Sprintf("Fault %s %d", d.phase, n)
				r, _ := http.NewRequest("POST", d.base+"/api/tasks/", strings.NewReader(`{"title": "`+title+`"}`))
				r.Header.Set("Authorization", "Bearer "+d.tokens[w%len(d.tokens)])
				r.Header.Set("Content-Type", "application/json")
				r.Header.Set("Idempotency-Key", fmt.Sprintf("fault-%d", n))
				code, id := 0, ""
				if resp, err := d.client.Do(r); err == nil {
					code = resp.StatusCode
					var body struct {
						ID string `json:"id"`
					}
					_ = json.NewDecoder(resp.Body).Decode(&body)
					resp.Body.Close()
					id = body.ID
				} else {
					time.Sleep(10 * time.Millisecond)
				}
				d.mu.Lock()
				d.sent++
				d.statuses[code]++
				d.answers = append(d.answers, answerAt{time.Now(), code})
				if code >= 200 && code < 300 {
					d.acked[id] = title
				}
				d.mu.Unlock()
			}
		}()
	}
	ch := make(chan struct{})
	go func() { wg.Wait(); close(ch) }()
	return ch
}

// TestFaultsUnderLoad: three instances behind haproxy (deploy/haproxy.cfg)
// with Redis and a PostgreSQL of the test's own, under a steady stream of
// writes. An instance is killed with SIGKILL and restarted, PostgreSQL is
// restarted, Redis is stopped and restarted. After each fault: every
// acknowledged write is in the database exactly once, no answer is 500,
// 503s come only while PostgreSQL is down or reconnecting, every instance
// is ready again, a logout on one instance is refused by the others within
// a second, and one client's shared limit across the three is exact.
func TestFaultsUnderLoad(t *testing.T) {
	haproxy, err := exec.LookPath("haproxy")
	if err != nil {
		haproxy = "/usr/sbin/haproxy"
		if _, err := os.Stat(haproxy); err != nil {
			t.Fatal("haproxy not found: run `make test` (it installs it) or apt-get install haproxy")
		}
	}
	pg := pgtest.NewCluster(t)
	dsn := pg.CreateDatabase(t, "faults")
	rs := redistest.Start(t)
	env := map[string]string{
		"DATABASE_URL": dsn, "REDIS_URL": rs.URL, "REDIS_KEY_PREFIX": "faults:" + filepath.Base(t.TempDir()) + ":",
		"JWT_SIGNING_KEY": strings.Repeat("faults!!", 8), "TRUSTED_PROXIES": "127.0.0.1/32",
		"RATE_LIMIT_USER": "1000000/minute", "RATE_LIMIT_ANON": "50/minute",
		"RATE_LIMIT_LOGIN": "1000/minute", "RATE_LIMIT_REGISTER": "1000/minute",
	}
	var out, errOut logtest.Buffer
	if err := run(context.Background(), []string{"taskmanager", "migrate"}, envFunc(env), nil, &out, &errOut); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	addrs := []string{freeAddr(t), freeAddr(t), freeAddr(t)}
	procs := make([]*process, 3)
	for i, a := range addrs {
		procs[i] = startAt(t, env, a)
	}
	front := freeAddr(t)
	lb := exec.Command(haproxy, "-db", "-f", "../../deploy/haproxy.cfg")
	lb.Env = append(os.Environ(), "CLUSTER_ADDR="+front, "APP1_ADDR="+addrs[0], "APP2_ADDR="+addrs[1], "APP3_ADDR="+addrs[2])
	if err := lb.Start(); err != nil {
		t.Fatal(err)
	}
	lbExited := make(chan struct{})
	go func() { _ = lb.Wait(); close(lbExited) }()
	t.Cleanup(func() { _ = lb.Process.Kill(); <-lbExited })
	base := "http://" + front
	waitHealthy(t, &http.Client{Timeout: time.Second}, base+"/healthz", lbExited)

	const password = "Fault-test-phrase-3"
	register := func(name string) {
		if code, body := callJSON(t, base, "POST", "/api/register/", "", map[string]string{"username": name, "password": password}); code != 201 {
			t.Fatalf("register %s = %d %v", name, code, body)
		}
	}
	login := func(p *process, name string) string {
		code, tok := p.call(t, "POST", "/api/token/", "", map[string]string{"username": name, "password": password})
		if code != 200 {
			t.Fatalf("login = %d %v", code, tok)
		}
		return tok["access"].(string)
	}
	var tokens []string
	for i := range 4 {
		name := fmt.Sprintf("writer%d", i)
		register(name)
		tokens = append(tokens, login(procs[i%3], name))
	}
	register("watcher")

	ready := func() bool {
		for _, p := range procs {
			resp, err := http.Get(p.base + "/readyz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return false
			}
		}
		return true
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var seq atomic.Int64
	ip := 0
	// exactLimit sends 150 concurrent anonymous requests from one client
	// (as haproxy forwards it) and returns how many were not throttled.
	exactLimit := func() int {
		ip++
		var passed atomic.Int64
		var wg sync.WaitGroup
		for range 150 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, _ := http.NewRequest("GET", base+"/api/tasks/", nil)
				r.Header.Set("X-Forwarded-For", fmt.Sprintf("198.51.100.%d", ip))
				if resp, err := client.Do(r); err == nil {
					if resp.StatusCode != 429 {
						passed.Add(1)
					}
					resp.Body.Close()
				}
			}()
		}
		wg.Wait()
		return int(passed.Load())
	}

	for _, f := range []struct {
		name            string
		inject, recover func()
		db              bool // 503s are expected while it lasts
	}{
		{"kill -9 instance", func() { _ = procs[0].cmd.Process.Kill() }, func() { procs[0] = startAt(t, env, addrs[0]) }, false},
		{"PostgreSQL restart", func() { pg.Stop(t) }, func() { pg.Start(t) }, true},
		{"Redis restart", rs.Stop, func() { rs.Restart(t) }, false},
	} {
		d := &loadDriver{base: base, tokens: tokens, client: client, seq: &seq, phase: strings.Fields(f.name)[0],
			acked: map[string]string{}, statuses: map[int]int{}}
		stop := make(chan struct{})
		done := d.run(stop, 12)
		time.Sleep(700 * time.Millisecond)
		faultAt := time.Now()
		f.inject()
		time.Sleep(time.Second)
		recoverAt := time.Now()
		f.recover()
		for !ready() {
			if time.Since(recoverAt) > 15*time.Second {
				t.Fatalf("%s: not every instance is ready 15 s after the recovery", f.name)
			}
			time.Sleep(20 * time.Millisecond)
		}
		readyAfter := time.Since(recoverAt)
		time.Sleep(700 * time.Millisecond)
		close(stop)
		<-done

		ids := make([]string, 0, len(d.acked))
		for id := range d.acked {
			ids = append(ids, id)
		}
		// A connection of its own per check: the one before may have seen the restart.
		conn, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		var found int
		if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM tasks WHERE id::text = ANY($1)`, ids).Scan(&found); err != nil {
			t.Fatal(err)
		}
		var dups int
		if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM (SELECT title FROM tasks GROUP BY title HAVING count(*) > 1) d`).Scan(&dups); err != nil {
			t.Fatal(err)
		}
		conn.Close(context.Background())
		last503 := time.Time{}
		late := 0
		for _, a := range d.answers {
			if a.code == 503 {
				last503 = a.at
				if !f.db || a.at.Before(faultAt) {
					late++
				}
			}
		}
		t.Logf("%s: sent %d, acknowledged %d, lost %d, duplicated titles %d; statuses %v; ready %v after recovery",
			f.name, d.sent, len(d.acked), len(d.acked)-found, dups, d.statuses, readyAfter.Round(time.Millisecond))
		if f.db && !last503.IsZero() {
			t.Logf("%s: last 503 %v after PostgreSQL was started again", f.name, last503.Sub(recoverAt).Round(time.Millisecond))
		}
		if found != len(d.acked) || dups != 0 {
			t.Errorf("%s: %d of %d acknowledged writes are in the database, %d titles twice", f.name, found, len(d.acked), dups)
		}
		if d.statuses[500] != 0 {
			t.Errorf("%s: %d answers were 500", f.name, d.statuses[500])
		}
		if late != 0 {
			t.Errorf("%s: %d answers were 503 without PostgreSQL being down", f.name, late)
		}

		// A logout on one instance is refused by the other two within a second.
		access := login(procs[1], "watcher")
		if code, _ := procs[2].call(t, "GET", "/api/me/", access, nil); code != 200 {
			t.Fatalf("%s: a fresh token is refused: %d", f.name, code)
		}
		if code, _ := procs[1].call(t, "POST", "/api/logout/all/", access, nil); code != 204 {
			t.Fatalf("%s: logout/all = %d", f.name, code)
		}
		began := time.Now()
		for _, p := range []*process{procs[0], procs[2]} {
			for {
				code, _ := p.call(t, "GET", "/api/me/", access, nil)
				if code == 401 {
					break
				}
				if time.Since(began) > time.Second {
					t.Fatalf("%s: %s still answers %d for a logged-out token after 1 s", f.name, p.base, code)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		refused := time.Since(began)

		// One client's limit across the three instances is exact again.
		var passed int
		for began := time.Now(); ; {
			if passed = exactLimit(); passed == 50 || time.Since(began) > 5*time.Second {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Logf("%s: logout refused everywhere within %v; 150 racing anonymous requests, %d passed (budget 50), exact %v after recovery",
			f.name, refused.Round(time.Millisecond), passed, time.Since(recoverAt).Round(time.Millisecond))
		if passed != 50 {
			t.Errorf("%s: the shared limit let %d of 150 through, want exactly 50", f.name, passed)
		}
	}
}
