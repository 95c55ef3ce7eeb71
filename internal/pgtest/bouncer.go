package pgtest

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Bouncer starts a PgBouncer (Debian's pgbouncer, which `make test`
// installs) in transaction pooling mode in front of the server of dsn, and
// returns dsn's database through it; it stops when tb ends. Like a
// production pooler it ignores the statement_timeout startup parameter,
// so the database's own setting carries the time budget.
func Bouncer(tb testing.TB, dsn string) string {
	tb.Helper()
	bin, err := exec.LookPath("pgbouncer")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/pgbouncer"); serr != nil {
			tb.Fatalf("pgtest: pgbouncer not found: run `make test` (it installs it) or apt-get install pgbouncer")
		}
		bin = "/usr/sbin/pgbouncer"
	}
	u, err := url.Parse(dsn)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	port, err := freePort()
	if err != nil {
		tb.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "pgbouncer-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = os.RemoveAll(dir) })
	// pgbouncer refuses to run as root: it then runs as the cluster's user.
	var args []string
	if os.Geteuid() == 0 {
		if _, err := user.Lookup("postgres"); err != nil {
			tb.Fatalf("pgtest: running pgbouncer as root needs the postgres user: %v", err)
		}
		args = append(args, "-u", "postgres")
		_ = os.Chmod(dir, 0o755)
	}
	ini := filepath.Join(dir, "pgbouncer.ini")
	conf := fmt.Sprintf(`[databases]
* = host=%s port=%s user=%s

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = any
pool_mode = transaction
max_client_conn = 2000
default_pool_size = 20
ignore_startup_parameters = statement_timeout
`, u.Hostname(), u.Port(), u.User.Username(), port)
	if err := os.WriteFile(ini, []byte(conf), 0o644); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin, append(args, ini)...)
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		tb.Fatalf("pgtest: start pgbouncer: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	tb.Cleanup(func() { _ = cmd.Process.Kill(); <-done })

	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			c.Close()
			break
		}
		select {
		case <-done:
			tb.Fatalf("pgtest: pgbouncer exited: %s", log.String())
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("pgtest: pgbouncer did not listen on %s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	through := *u
	through.Host = addr
	return through.String()
}

// SetDatabase runs ALTER DATABASE on dsn's database, for settings a pooler
// cannot pass as startup parameters (statement_timeout).
func SetDatabase(tb testing.TB, dsn, setting, value string) {
	tb.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		tb.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	if err := exec1(dsn, fmt.Sprintf(`ALTER DATABASE %q SET %s = '%s'`, name, setting, value)); err != nil {
		tb.Fatalf("pgtest: alter database: %v", err)
	}
}
