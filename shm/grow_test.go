package shm

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"

	"fastcall/wire"
)

// TestGrowWhileReading grows a map while another Map (its own mapping and
// lock handle, as another process would have) keeps reading the old file
// from goroutines; the readers never fail, and their next operations see
// the new generation and the writes made after the growth.
func TestGrowWhileReading(t *testing.T) {
	w, p := mustCreate(t, MinSize)
	r, err := Open(p, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	n := 0
	for ; ; n++ {
		err := w.Put([]byte(fmt.Sprintf("k%05d", n)), []byte(fmt.Sprintf("v%05d", n)))
		if errors.Is(err, wire.ENOSPC) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	oldIno := inode(w.cur.Load().f)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 16)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := i % n
				c, err := r.Get([]byte(fmt.Sprintf("k%05d", k)), buf)
				if err != nil || string(buf[:c]) != fmt.Sprintf("v%05d", k) {
					errs <- fmt.Errorf("reader: key %d: %q %v", k, buf[:c], err)
					return
				}
			}
		}()
	}
	if err := w.Grow(4 * MinSize); err != nil {
		t.Fatal(err)
	}
	if err := w.Put([]byte("after-grow"), []byte("yes")); err != nil {
		t.Fatalf("put after grow: %v", err)
	}
	close(stop)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	if inode(w.cur.Load().f) == oldIno {
		t.Fatal("grow did not replace the file")
	}
	buf := make([]byte, 16)
	if c, err := r.Get([]byte("after-grow"), buf); err != nil || string(buf[:c]) != "yes" {
		t.Fatalf("reader after grow: %q %v", buf[:c], err)
	}
	for _, m := range []*Map{w, r} {
		st, err := m.Stats()
		if err != nil || st.Generation != 2 || st.FileSize != 4*MinSize || st.Nodes != uint64(n)+1 {
			t.Fatalf("stats after grow: %+v %v", st, err)
		}
	}
	if err := w.Grow(MinSize); !errors.Is(err, wire.EINVAL) {
		t.Fatalf("shrink: %v", err)
	}
	strictVerify(t, w)
	ents, _ := os.ReadDir(p[:len(p)-2])
	if len(ents) != 1 {
		t.Fatalf("scratch files left: %v", ents)
	}
}
