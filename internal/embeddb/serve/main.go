// Command serve runs the embedded FerretDB on its own, for tests that need
// a database outliving the server they kill: it serves the SQLite files
// under the directory given as its argument, prints the connection string
// on a line of its own, and runs until it is killed or its standard input
// closes.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/tenancy/tenancy/internal/embeddb"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: serve DIR")
		os.Exit(2)
	}
	uri, stop, err := embeddb.Start(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(1)
	}
	defer stop()
	fmt.Println(uri)
	_, _ = io.Copy(io.Discard, os.Stdin)
}
