package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/term"

	"github.com/acme/taskmanager/internal/auth"
	"github.com/acme/taskmanager/internal/config"
	"github.com/acme/taskmanager/internal/httpapi"
	"github.com/acme/taskmanager/internal/postgres"
	"github.com/acme/taskmanager/internal/ratelimit"
	"github.com/acme/taskmanager/internal/task"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `usage: taskmanager <command> [flags]

commands:
  serve        serve the API (configuration from the environment)
  migrate      apply database migrations
  createuser   create a user: --username NAME [--email ADDR] [--admin]; password from the prompt or stdin
  check        validate the configuration for serve and exit
  version      print the version

"taskmanager <command> --help" or "taskmanager help <command>" tells more.`

// usages is each command's --help.
var usages = map[string]string{
	"serve": `usage: taskmanager serve

Serves the API on LISTEN_ADDR (default :8000, every interface) until SIGINT or
SIGTERM, then drains in-flight requests for up to 20 s. All configuration
comes from the environment: DATABASE_URL and JWT_SIGNING_KEY (or
JWT_PRIVATE_KEY_FILE) are required; APP_ENV (development or production)
chooses the guard rails; "taskmanager check" validates a configuration without
serving. The database need not be up yet: /readyz answers 503 until it is.`,
	"migrate": `usage: taskmanager migrate

Applies the migrations this binary embeds to DATABASE_URL, each once, and
exits. Safe to run on every deploy.`,
	"createuser": `usage: taskmanager createuser --username NAME [--email ADDR] [--admin]

Creates a user in DATABASE_URL, e.g. the first administrator when registration
is off. The password is asked for twice on a terminal, or read as one line from
standard input (printf '%s\n' "$PASSWORD" | taskmanager createuser ...); it is
never taken from a flag, where ps and shell history would show it.

flags:`,
	"check": `usage: taskmanager check

Reads the configuration from the environment as serve would, prints each
problem on its own line and exits 1 if there is any; warnings are printed but
do not fail. Nothing is connected to.`,
	"version": `usage: taskmanager version

Prints the version of this binary and of the Go toolchain that built it.`,
}

// errHelp is a --help that was answered: run returns nil for it.
var errHelp = errors.New("help requested")

// usageError is a command line that could not be understood; its usage has
// already gone to stderr. It exits 2, as the flag package's own ExitOnError.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }

// exitCode is the process status for run's error: 2 for a bad command line,
// 1 for anything else.
func exitCode(err error) int {
	if errors.As(err, new(usageError)) {
		return 2
	}
	return 1
}

// run is the whole program; main only wires it to the process.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	err := dispatch(ctx, args, getenv, stdin, stdout, stderr)
	if errors.Is(err, errHelp) {
		return nil
	}
	return err
}

func dispatch(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) < 2 {
		fmt.Fprintln(stderr, usage)
		return usageError{errors.New("missing command")}
	}
	cmd, rest := args[1], args[2:]
	if _, known := usages[cmd]; known && cmd != "createuser" {
		// The commands without flags still answer --help, and refuse
		// anything else rather than ignore it.
		if err := parseFlags(flag.NewFlagSet(cmd, flag.ContinueOnError), rest, stdout, stderr); err != nil {
			return err
		}
	}
	switch cmd {
	case "serve":
		return serve(ctx, getenv, stdout, stderr)
	case "migrate":
		return migrate(ctx, getenv, stdout, stderr)
	case "createuser":
		return createUser(ctx, rest, getenv, stdin, stdout, stderr)
	case "check":
		cfg, err := loadConfig(getenv, "serve", stderr)
		if err != nil {
			return err
		}
		// Warnings do not stop serve, which logs them; check shows them too.
		for _, w := range cfg.Warnings {
			fmt.Fprintln(stderr, "taskmanager: configuration warning:", w)
		}
		fmt.Fprintln(stdout, "configuration OK")
		return nil
	case "version", "--version", "-v":
		fmt.Fprintf(stdout, "taskmanager %s (%s)\n", version, runtime.Version())
		return nil
	case "help", "--help", "-h":
		return help(rest, stdout, stderr)
	default:
		fmt.Fprintln(stderr, usage)
		return usageError{fmt.Errorf("unknown command %q", cmd)}
	}
}

// help answers "taskmanager help [command]".
func help(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stdout, usage)
		return nil
	}
	if _, known := usages[args[0]]; !known || len(args) > 1 {
		fmt.Fprintln(stderr, usage)
		return usageError{fmt.Errorf("help: unknown command %q", strings.Join(args, " "))}
	}
	if args[0] == "createuser" {
		// Its usage lists its flags, which only its flag set knows.
		return createUser(context.Background(), []string{"--help"}, nil, nil, stdout, stderr)
	}
	fmt.Fprintln(stdout, usages[args[0]])
	return nil
}

// parseFlags parses a command's flags and refuses stray arguments. -h or
// --help prints the command's usage on stdout and returns errHelp; a mistake
// prints the usage on stderr and returns a usageError.
func parseFlags(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) error {
	// flag would print its complaint and then the usage; we print the usage
	// and main prints the complaint, last, where the eye lands.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	printUsage := func(w io.Writer) {
		fmt.Fprintln(w, usages[fs.Name()])
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		printUsage(stdout)
		return errHelp
	case err == nil && fs.NArg() > 0:
		err = fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err != nil {
		printUsage(stderr)
		return usageError{fmt.Errorf("%s: %w", fs.Name(), err)}
	}
	return nil
}

// loadConfig reads the configuration and prints each problem on its own
// line of stderr.
func loadConfig(getenv func(string) string, need string, stderr io.Writer) (*config.Config, error) {
	cfg, err := config.Load(getenv, need)
	var problems config.Problems
	if errors.As(err, &problems) {
		for _, p := range problems {
			fmt.Fprintln(stderr, "taskmanager: configuration:", p)
		}
		return nil, fmt.Errorf("refusing to %s: %d configuration problem(s)", need, len(problems))
	}
	return cfg, err
}

// newLogger writes JSON lines to stdout and, when LOG_FILE is set, to that
// file too.
func newLogger(cfg *config.Config, stdout io.Writer) (*slog.Logger, func(), error) {
	out, closeFn := stdout, func() {}
	if cfg.LogFile != "" {
		f, err := os.OpenFile(cfg.LogFile, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			return nil, nil, fmt.Errorf("open LOG_FILE: %w", err)
		}
		out, closeFn = io.MultiWriter(stdout, f), func() { _ = f.Close() }
	}
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	return slog.New(slog.NewJSONHandler(out, &slog.HandlerOptions{Level: level})), closeFn, nil
}

func serve(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := loadConfig(getenv, "serve", stderr)
	if err != nil {
		return err
	}
	log, closeLog, err := newLogger(cfg, stdout)
	if err != nil {
		return err
	}
	defer closeLog()

	for _, w := range cfg.Warnings {
		log.Warn("risky configuration", "warning", w)
	}
	// The port first: when another server has it, say so before anything
	// else is started, and never claim to serve.
	ln, err := listen(cfg.ListenAddr)
	if err != nil {
		return err
	}
	defer ln.Close()
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.TLSCertFile != "" {
		// Loaded here rather than by ServeTLS, so a bad file stops the start
		// before it is announced.
		cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
		if err != nil {
			return fmt.Errorf("TLS_CERT_FILE, TLS_KEY_FILE: %w", err)
		}
		tlsConfig.Certificates = []tls.Certificate{cert}
	}
	db, err := postgres.Open(ctx, cfg.DatabaseURL, postgres.Options{
		TokenTTL:        cfg.AccessTokenTTL + auth.Leeway,
		QueryTimeout:    cfg.DBQueryTimeout,
		MaxTasksPerUser: cfg.MaxTasksPerUser,
		Logger:          log,
	})
	if err != nil {
		return err
	}
	defer db.Close()
	go db.Revocations().Run(ctx)
	go purge(ctx, db, log)

	rateStore, closeRedis, err := rateLimitStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeRedis()
	handler := httpapi.NewServer(cfg, log, httpapi.Deps{
		Tasks: db.Tasks(), Users: db.Users(), Sessions: db.Sessions(), Keys: db.Keys(),
		Revocations: db.Revocations(), Ping: db.Ping, RateStore: rateStore,
	})
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		// The handler counts the contract's 16 KiB exactly; net/http refuses
		// what is far beyond it without reading it all.
		MaxHeaderBytes: httpapi.MaxHeaderBytes,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		TLSConfig:      tlsConfig,
	}
	base := baseURL(ln.Addr(), cfg.TLSCertFile != "", cfg.PublicURL)
	log.Info("listening", "addr", ln.Addr().String(), "url", base, "env", cfg.Env, "tls", cfg.TLSCertFile != "", "version", version)
	// For the person at the terminal; stdout is the JSON log.
	if cfg.DocsEnabled {
		fmt.Fprintf(stderr, "taskmanager: serving %s — interactive docs at %s/docs\n", base, base)
	} else {
		fmt.Fprintf(stderr, "taskmanager: serving %s\n", base)
	}

	errc := make(chan error, 1)
	go func() {
		if cfg.TLSCertFile != "" {
			errc <- srv.ServeTLS(ln, "", "") // the certificate is in TLSConfig
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: draining in-flight requests")
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// listen binds addr (LISTEN_ADDR). Its error names the variable and, when
// the port is taken, what to do about it.
func listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		return ln, nil
	}
	if errors.Is(err, syscall.EADDRINUSE) {
		hint := "set LISTEN_ADDR to a free address"
		if host, port, perr := net.SplitHostPort(addr); perr == nil {
			if n, aerr := strconv.Atoi(port); aerr == nil && n > 0 && n < 65535 {
				hint = "e.g. LISTEN_ADDR=" + net.JoinHostPort(host, strconv.Itoa(n+1))
			}
		}
		return nil, fmt.Errorf("LISTEN_ADDR=%s: the port is already in use, probably by another server (another taskmanager?): stop it, or listen elsewhere (%s)", addr, hint)
	}
	return nil, fmt.Errorf("LISTEN_ADDR=%s: cannot listen: %w", addr, err)
}

// baseURL is where a client on this machine reaches the listener at addr:
// PUBLIC_URL when it is set; a wildcard address is shown as 127.0.0.1,
// which both it and the development ALLOWED_HOSTS accept.
func baseURL(addr net.Addr, secure bool, public *url.URL) string {
	if public != nil {
		return strings.TrimSuffix(public.String(), "/")
	}
	u := url.URL{Scheme: "http", Host: addr.String()}
	if secure {
		u.Scheme = "https"
	}
	if ta, ok := addr.(*net.TCPAddr); ok && (ta.IP == nil || ta.IP.IsUnspecified()) {
		u.Host = net.JoinHostPort("127.0.0.1", strconv.Itoa(ta.Port))
	}
	return u.String()
}

// rateLimitStore shares rate-limit counters through Redis when REDIS_URL
// is set, falling back to this instance's memory while Redis is down.
func rateLimitStore(ctx context.Context, cfg *config.Config, log *slog.Logger) (func(time.Duration) ratelimit.Store, func(), error) {
	if cfg.RedisURL == "" {
		log.Info("rate limits are counted by this instance alone; set REDIS_URL to share them between instances")
		return nil, func() {}, nil
	}
	opts, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, nil, errors.New("REDIS_URL cannot be parsed")
	}
	// Short timeouts: a slow Redis must cost a request milliseconds, not seconds.
	opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = 250*time.Millisecond, 250*time.Millisecond, 250*time.Millisecond
	redis.SetLogger(redisLogger{log})
	client := redis.NewClient(opts)
	if err := client.Ping(ctx).Err(); err != nil {
		log.Warn("Redis does not answer: counting rate limits locally until it does", "err", err.Error())
	} else {
		log.Info("rate limits are shared through Redis", "addr", opts.Addr)
	}
	shared := ratelimit.NewRedis(client, cfg.RedisKeyPrefix)
	store := func(window time.Duration) ratelimit.Store {
		return &ratelimit.Fallback{Primary: shared, Secondary: ratelimit.NewLocal(window), Log: log}
	}
	return store, func() { _ = client.Close() }, nil
}

// redisLogger sends go-redis's own complaints to the debug log: the
// fallback store reports an outage once, as a warning.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}

// purge deletes dead sessions and refresh tokens now and then. Every
// instance runs it; the deletes are idempotent.
func purge(ctx context.Context, db *postgres.DB, log *slog.Logger) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if n, err := db.Purge(ctx); err != nil {
			log.Warn("purge failed", "err", err)
		} else if n > 0 {
			log.Info("purged expired sessions and refresh tokens", "rows", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func migrate(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := loadConfig(getenv, "migrate", stderr)
	if err != nil {
		return err
	}
	db, err := postgres.Open(ctx, cfg.DatabaseURL, postgres.Options{})
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "migrations applied")
	return nil
}

func createUser(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("createuser", flag.ContinueOnError)
	username := fs.String("username", "", "username (required): up to 150 letters, digits and @/./+/-/_")
	email := fs.String("email", "", "email address")
	isAdmin := fs.Bool("admin", false, "make the user an administrator")
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		return err
	}
	if !task.ValidUsername(*username) {
		return errors.New("createuser: --username is required: up to 150 letters, digits and @/./+/-/_")
	}
	cfg, err := loadConfig(getenv, "createuser", stderr)
	if err != nil {
		return err
	}
	password, err := readPassword(stdin, stderr)
	if err != nil {
		return err
	}
	if problems := auth.CheckPassword(password, *username); len(problems) > 0 {
		return errors.New("createuser: " + strings.Join(problems, " "))
	}
	hash, err := auth.NewHasher(1).Hash(ctx, password)
	if err != nil {
		return err
	}
	db, err := postgres.Open(ctx, cfg.DatabaseURL, postgres.Options{})
	if err != nil {
		return err
	}
	defer db.Close()
	u := &task.User{Username: *username, Email: strings.TrimSpace(*email), PasswordHash: hash, IsAdmin: *isAdmin}
	if err := db.Users().CreateUser(ctx, u); err != nil {
		if fields := task.ErrorFields(err); fields != nil {
			return errors.New("createuser: " + strings.Join(fields["username"], " "))
		}
		return err
	}
	fmt.Fprintf(stdout, "created user %s (id %s, admin %t)\n", u.Username, u.ID, u.IsAdmin)
	return nil
}

// readPassword prompts twice on a terminal; from a pipe it reads one line.
func readPassword(stdin io.Reader, stderr io.Writer) (string, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(stderr, "Password: ")
		first, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", err
		}
		fmt.Fprint(stderr, "Password (again): ")
		second, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", err
		}
		if string(first) != string(second) {
			return "", errors.New("createuser: passwords do not match")
		}
		return string(first), nil
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("createuser: no password on stdin")
	}
	return line, nil
}
