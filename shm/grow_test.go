package shm

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"testing"

	"fastcall/lock/proctest"
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

// TestGrowKilledAfterRename kills a growing process between the rename of
// the new file over the path and the store that marks the old file
// superseded. The old file is left with a dead writer, an odd write
// sequence and no superseded flag; a read-only Map on it, which never
// repairs, must find the new file at the path and read from it.
func TestGrowKilledAfterRename(t *testing.T) {
	w, p := mustCreate(t, MinSize)
	putKeys(t, w, 20, "old")
	r, err := Open(p, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	buf := make([]byte, 16)
	if c, err := r.Get(numberedKey(7), buf); err != nil || string(buf[:c]) != "old" {
		t.Fatalf("reader before grow: %q %v", buf[:c], err)
	}
	oldIno := inode(r.cur.Load().f)

	c := proctest.Command("growstopper", pathEnv+"="+p)
	err = c.Run()
	if ws, ok := c.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("growstopper was not killed after the rename: %v", err)
	}
	old := r.cur.Load().r
	if old.superseded() || load64(old.mem, hdrWriteSeqOff)&1 == 0 {
		t.Fatalf("old file: superseded %v, write sequence %d", old.superseded(), load64(old.mem, hdrWriteSeqOff))
	}
	// A writer on the file now at the path changes a key there.
	nw, err := Open(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer nw.Close()
	if inode(nw.cur.Load().f) == oldIno {
		t.Fatal("the path still names the old file")
	}
	if err := nw.Put(numberedKey(7), []byte("new")); err != nil {
		t.Fatal(err)
	}
	if c, err := r.Get(numberedKey(7), buf); err != nil || string(buf[:c]) != "new" {
		t.Fatalf("reader after the killed grow: %q %v, want %q", buf[:c], err, "new")
	}
	if inode(r.cur.Load().f) == oldIno {
		t.Fatal("reader still maps the old file")
	}
	st, err := r.Stats()
	if err != nil || st.Generation != 2 || st.FileSize != 2*MinSize || st.Nodes != 20 {
		t.Fatalf("reader stats: %+v %v", st, err)
	}
}
