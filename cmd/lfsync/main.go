// Command lfsync is the lfsync sync server.
//
//	lfsync serve [flags]        run the server (lfsync serve -h lists the flags)
//	lfsync precompress DIR      write .gz and .br siblings of DIR's web assets
//	lfsync version              print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/lfsync/lfsync/server/serve"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	if len(args) == 0 {
		usage()
		return 2
	}
	switch args[0] {
	case "serve":
		return runServe(args[1:])
	case "precompress":
		return runPrecompress(args[1:])
	case "version":
		fmt.Println("lfsync", versionString())
		return 0
	case "help", "-h", "--help":
		usage()
		return 0
	}
	fmt.Fprintf(os.Stderr, "lfsync: unknown command %q\n", args[0])
	usage()
	return 2
}

func runServe(args []string) int {
	m := serve.NewMain()
	if err := m.ParseFlags(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "lfsync serve:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := m.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "lfsync serve:", err)
		return 1
	}
	select {
	case <-ctx.Done():
	case <-m.Done():
	}
	stop() // a second signal kills the process
	if err := m.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "lfsync serve: shutdown:", err)
		return 1
	}
	if err := m.Err(); err != nil {
		return 1
	}
	return 0
}

func runPrecompress(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: lfsync precompress DIR")
		return 2
	}
	files, err := serve.Precompress(args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, "lfsync precompress:", err)
		return 1
	}
	for _, f := range files {
		fmt.Printf("%-24s raw %9d  gzip %9d  brotli %9d\n", f.Name, f.Raw, f.Gzip, f.Brotli)
	}
	return 0
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "devel"
}

func usage() {
	fmt.Fprint(os.Stderr, `usage:
  lfsync serve [flags]     run the sync server (lfsync serve -h lists the flags)
  lfsync precompress DIR   write .gz and .br siblings of DIR's web assets
  lfsync version           print the version
`)
}
