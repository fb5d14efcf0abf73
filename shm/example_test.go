package shm_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"fastcall/shm"
	"fastcall/wire"
)

// One process creates the map file and writes; another (here a second
// handle in the same process) opens the same file and reads, with no
// copy and no network call in between.
func Example() {
	dir, err := os.MkdirTemp("", "shm-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "example.map") // a bare name would go under /dev/shm

	w, err := shm.Create(path, 1<<20, shm.Options{})
	if err != nil {
		panic(err)
	}
	defer w.Close()
	for _, kv := range [][2]string{{"svc/db/1", "10.0.0.1:5432"}, {"svc/db/2", "10.0.0.2:5432"}, {"svc/web/1", "10.0.0.9:80"}} {
		if err := w.Put([]byte(kv[0]), []byte(kv[1])); err != nil {
			panic(err)
		}
	}

	r, err := shm.Open(path, shm.Options{ReadOnly: true})
	if err != nil {
		panic(err)
	}
	defer r.Close()
	buf := make([]byte, 64)
	n, err := r.Get([]byte("svc/db/2"), buf) // allocates nothing
	fmt.Println(string(buf[:n]), err)
	_, err = r.Get([]byte("svc/db/3"), buf)
	fmt.Println(errors.Is(err, wire.ENOENT))
	// Keys are ordered: a prefix walk sees them in byte order.
	_ = r.Prefix([]byte("svc/db/"), func(k, v []byte) bool {
		fmt.Printf("%s -> %s\n", k, v)
		return true
	})
	// Output:
	// 10.0.0.2:5432 <nil>
	// true
	// svc/db/1 -> 10.0.0.1:5432
	// svc/db/2 -> 10.0.0.2:5432
}
