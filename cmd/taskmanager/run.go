package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"strings"

	"github.com/acme/taskmanager/internal/config"
	"github.com/acme/taskmanager/internal/postgres"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `usage: taskmanager <command> [flags]

commands:
  serve        serve the API (configuration from the environment)
  migrate      apply database migrations
  createuser   create a user: --username NAME [--email ADDR] [--admin]; password from the prompt or stdin
  createclient register an OAuth client: --name NAME [--redirect-uri URI]... [--grant G]... [--scope S]... [--public]
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
	"createclient": `usage: taskmanager createclient --name NAME [--redirect-uri URI]... [--grant GRANT]... [--scope SCOPE]... [--public]

Registers an OAuth client in DATABASE_URL, as an administrator's POST
/api/admin/oauth/clients/ does, and prints its client_id and, for a
confidential client (the default), its client_secret: shown this once, only
its hash is stored. Lists may also be given comma-separated.

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
	if _, known := usages[cmd]; known && cmd != "createuser" && cmd != "createclient" {
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
	case "createclient":
		return createClient(ctx, rest, getenv, stdout, stderr)
	case "check":
		return check(getenv, stdout, stderr)
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
	switch args[0] {
	// Their usages list their flags, which only their flag sets know.
	case "createuser":
		return createUser(context.Background(), []string{"--help"}, nil, nil, stdout, stderr)
	case "createclient":
		return createClient(context.Background(), []string{"--help"}, nil, stdout, stderr)
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

// openDB reads the configuration as need requires it and opens the
// database it names for a one-shot command, with no statement budget (a
// migration may run long).
func openDB(ctx context.Context, getenv func(string) string, need string, stderr io.Writer) (*postgres.DB, error) {
	cfg, err := loadConfig(getenv, need, stderr)
	if err != nil {
		return nil, err
	}
	return postgres.Open(ctx, cfg.DatabaseURL, postgres.Options{})
}
