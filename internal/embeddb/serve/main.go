// Command serve runs a MongoDB-wire server for tests and prints its
// connection string on a line of its own, then runs until it is killed or
// its standard input closes.
//
//	serve [DIR]                  the embedded FerretDB on the SQLite files under DIR
//	                             (a temporary directory, removed at exit, if none)
//	serve -docker [-image IMG]   a MongoDB container, through testcontainers-go
//
// Tests that need a database outliving the server they kill run it with a
// DIR; mongotest runs it to keep FerretDB and the Docker client out of the
// module graph of the packages it tests.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/testcontainers/testcontainers-go/modules/mongodb"

	"github.com/tenancy/tenancy/internal/embeddb"
)

func main() {
	docker := flag.Bool("docker", false, "run a MongoDB container instead of FerretDB")
	image := flag.String("image", "mongo:8", "the container's image, with -docker")
	flag.Parse()
	// An interrupt at the terminal reaches the whole process group: this
	// process ends when its parent closes its standard input, which the
	// parent's end does too, and cleans up then.
	signal.Ignore(os.Interrupt)
	if flag.NArg() > 1 || (*docker && flag.NArg() > 0) {
		fmt.Fprintln(os.Stderr, "usage: serve [DIR] | serve -docker [-image IMG]")
		os.Exit(2)
	}
	var uri string
	var stop func()
	var err error
	if *docker {
		uri, stop, err = startContainer(*image)
	} else {
		uri, stop, err = startFerretDB(flag.Arg(0))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(1)
	}
	defer stop()
	fmt.Println(uri)
	_, _ = io.Copy(io.Discard, os.Stdin)
}

func startFerretDB(dir string) (string, func(), error) {
	remove := func() {}
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "tenancy-db-"); err != nil {
			return "", nil, err
		}
		remove = func() { _ = os.RemoveAll(dir) }
	}
	uri, stop, err := embeddb.Start(dir)
	if err != nil {
		remove()
		return "", nil, err
	}
	return uri, func() { stop(); remove() }, nil
}

func startContainer(image string) (string, func(), error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := mongodb.Run(ctx, image)
	if err != nil {
		return "", nil, fmt.Errorf("start a MongoDB container (needs a Docker engine): %w", err)
	}
	uri, err := c.ConnectionString(ctx)
	if err != nil {
		_ = c.Terminate(context.Background())
		return "", nil, fmt.Errorf("MongoDB container address: %w", err)
	}
	return uri, func() { _ = c.Terminate(context.Background()) }, nil
}
