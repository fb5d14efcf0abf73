package shm

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"fastcall/lock/proctest"
	"fastcall/wire"

	"golang.org/x/sys/unix"
)

// truncateEnv is the size the truncated child cuts the file to.
const truncateEnv = "SHM_TEST_TRUNCATE"

// truncatedKeys are put before the cut; their nodes lie past every cut
// the test makes but the last (the arena starts after the index).
const truncatedKeys = 64

// childTruncated maps a file as a writer and as a reader, truncates it
// (as another local process may), then runs every method twice and
// prints "name errno" for each: a method that faults kills the process
// unless the fault is turned into an error. A read or write hold left by
// a faulting method would make the second round time out (ETIMEDOUT).
func childTruncated() int {
	path := os.Getenv(pathEnv)
	size, _ := strconv.ParseInt(os.Getenv(truncateEnv), 10, 64)
	opts := Options{Timeout: 200 * time.Millisecond}
	w, err := Open(path, opts)
	if err != nil {
		fmt.Println("open", err)
		return 1
	}
	ro := opts
	ro.ReadOnly = true
	r, err := Open(path, ro)
	if err != nil {
		fmt.Println("open-ro", err)
		return 1
	}
	if err := os.Truncate(path, size); err != nil {
		fmt.Println("truncate", err)
		return 1
	}
	key := procKey(truncatedKeys - 1)
	buf := make([]byte, 4096)
	for round := 0; round < 2; round++ {
		for _, op := range []struct {
			name string
			fn   func() error
		}{
			{"get", func() error { _, err := w.Get(key, buf); return err }},
			{"get-ro", func() error { _, err := r.Get(key, buf); return err }},
			{"view", func() error { return r.View(key, func([]byte) {}) }},
			{"range", func() error { return r.Range(nil, nil, func(k, v []byte) bool { return true }) }},
			{"prefix", func() error { return r.Prefix([]byte("key-"), func(k, v []byte) bool { return true }) }},
			{"put", func() error { return w.Put(key, []byte("new value")) }},
			{"put-new", func() error { return w.Put([]byte("another key"), []byte("v")) }},
			{"delete", func() error { return w.Delete(key) }},
			{"verify", func() error { return r.Verify() }},
			{"repair", func() error { return w.Repair() }},
			{"stats", func() error { _, err := r.Stats(); return err }},
			{"grow", func() error { return w.Grow(1 << 22) }},
		} {
			err := op.fn()
			fmt.Println(op.name, wire.AsErrno(err).String(), err)
		}
	}
	fmt.Println("close", wire.AsErrno(w.Close()).String(), wire.AsErrno(r.Close()).String())
	fmt.Println("alive")
	return 0
}

// TestTruncatedAfterMap: a local process that truncates the file under
// processes that mapped it made their next access past the new end fault
// (SIGBUS), which killed them. Every method now returns EPROTO instead
// (or its usual answer where it touched nothing past the end), leaves no
// lock hold behind, and the process lives.
func TestTruncatedAfterMap(t *testing.T) {
	for _, size := range []int64{0, hdrSize, indexOffset, indexOffset + 4096} {
		t.Run(strconv.FormatInt(size, 10), func(t *testing.T) {
			path := truncatedMap(t)
			out := runChild(t, "truncated", pathEnv+"="+path, truncateEnv+"="+strconv.FormatInt(size, 10))
			sc := bufio.NewScanner(bytes.NewReader(out))
			alive, faulted := false, 0
			for sc.Scan() {
				f := strings.Fields(sc.Text())
				switch {
				case len(f) == 0:
				case f[0] == "alive":
					alive = true
				case f[0] == "close":
				case f[1] == "EPROTO":
					faulted++
				case f[1] == "OK" || f[1] == "ENOENT" || f[1] == "EINVAL" || f[1] == "EMSGSIZE":
					// Touched nothing past the end (or not this time).
				default:
					t.Errorf("%s", sc.Text())
				}
			}
			if !alive || faulted == 0 {
				t.Fatalf("alive %v, %d methods EPROTO:\n%s", alive, faulted, out)
			}
			t.Logf("%d of 24 calls EPROTO", faulted)
		})
	}
}

// childCutOpen opens the map at pathEnv, as a reader and as a writer in
// turn, for a second, while a goroutine truncates the file to nothing and
// writes its bytes back, over and over (as a local process may); it
// prints how many opens the cut made fail (EPROTO) and "alive" last.
func childCutOpen() int {
	path := os.Getenv(pathEnv)
	good, err := os.ReadFile(path)
	if err != nil {
		fmt.Println("read", err)
		return 1
	}
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			os.Truncate(path, 0)
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err == nil {
				f.Write(good)
				f.Close()
			}
		}
	}()
	cut := 0
	for end, i := time.Now().Add(time.Second), 0; time.Now().Before(end); i++ {
		m, err := Open(path, Options{ReadOnly: i%2 == 0, Timeout: 200 * time.Millisecond})
		var fe *FileError
		switch {
		case err == nil:
			m.Close()
		case errors.As(err, &fe) && strings.HasPrefix(fe.Reason, "fault: "):
			cut++
		}
	}
	close(stop)
	fmt.Println("cut", cut > 0)
	fmt.Println("alive")
	return 0
}

// TestTruncatedWhileOpened: Open maps the file, then reads its header
// and attaches its lock; a local process that truncated the file between
// the two made those reads fault, which killed the opening process (it
// died within milliseconds of such a loop). The fault is Open's EPROTO
// now.
func TestTruncatedWhileOpened(t *testing.T) {
	if raceEnabled {
		// The race detector runs atomic operations on memory outside
		// the Go heap in its own C code, on the system stack, where the
		// runtime cannot turn a fault into a panic: the cut kills the
		// race-built child at its first atomic operation on the cut
		// file, whatever Open does.
		t.Skip("a fault in the race detector's atomics cannot be recovered")
	}
	path := truncatedMap(t)
	out := runChild(t, "cutopen", pathEnv+"="+path)
	if !strings.HasSuffix(string(out), "alive\n") {
		t.Fatalf("child said:\n%s", out)
	}
	t.Logf("%s", out)
}

// truncatedMap makes the map the truncating children open: a 1 MiB file
// holding truncatedKeys keys.
func truncatedMap(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "map")
	m, err := Create(path, 1<<20, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for i := 0; i < truncatedKeys; i++ {
		if err := m.Put(procKey(i), bytes.Repeat([]byte{'v'}, 100)); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// runChild runs the child role with env and returns what it printed; a
// child that died or failed fails the test.
func runChild(t *testing.T, role string, env ...string) []byte {
	t.Helper()
	cmd := proctest.Command(role, env...)
	cmd.Stderr = nil
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s child: %v\n%s", role, err, head(out))
	}
	return out
}

// head returns the start of a child's output: its last answers and, if
// it died, why.
func head(b []byte) []byte {
	const max = 2048
	if i := bytes.Index(b, []byte("\ngoroutine ")); i >= 0 && i < max {
		return b[:i]
	}
	return b[:min(len(b), max)]
}

// childCutScratch grows the map at pathEnv while, at store stopEnv into
// the new file, it truncates that scratch file to nothing (as another
// local process may), then prints Grow's error number and what it was
// doing, whether the map still reads and takes writes, and the scratch
// files left; "alive" last.
func childCutScratch() int {
	path := os.Getenv(pathEnv)
	at, _ := strconv.Atoi(os.Getenv(stopEnv))
	m, size := openToGrow(path)
	if m == nil {
		return 1
	}
	cut, n := false, 0
	storeHook = func() {
		if cut {
			return
		}
		if tmps, _ := filepath.Glob(path + ".tmp.*"); len(tmps) == 1 {
			if n++; n == at {
				cut = os.Truncate(tmps[0], 0) == nil
			}
		}
	}
	err := m.Grow(int64(2 * size))
	storeHook = nil
	var fe *FileError
	phase := "none"
	if errors.As(err, &fe) {
		phase = fe.Reason
	}
	fmt.Println("grow", wire.AsErrno(err).String(), cut)
	fmt.Println("phase", phase)
	buf := make([]byte, 4096)
	_, err = m.Get(procKey(0), buf)
	fmt.Println("get", wire.AsErrno(err).String())
	fmt.Println("put", wire.AsErrno(m.Put([]byte("after"), []byte("v"))).String())
	tmps, _ := filepath.Glob(path + ".tmp.*")
	fmt.Println("scratch", len(tmps))
	fmt.Println("alive")
	return 0
}

// TestScratchTruncatedDuringGrow: Grow copies the map into a scratch
// file it has mapped; a process that truncated that file during the copy
// made the copy fault, and the fault, outside the map's own mappings,
// killed the growing process (an rfcd agent grows its map when full).
// Grow now fails with EPROTO, drops the scratch file, and the map stays
// current: it reads and takes writes as before.
func TestScratchTruncatedDuringGrow(t *testing.T) {
	path := truncatedMap(t)
	// The first store formats the new file; the 50th copies a key.
	for _, tc := range []struct {
		at    int
		phase string
	}{{1, "fault: file truncated while it was formatted"}, {50, "fault: file truncated while it was filled"}} {
		out := runChild(t, "cutscratch", pathEnv+"="+path, stopEnv+"="+strconv.Itoa(tc.at))
		want := "grow EPROTO true\nphase " + tc.phase + "\nget OK\nput OK\nscratch 0\nalive\n"
		if string(out) != want {
			t.Fatalf("cut at store %d: child said:\n%s\nwant:\n%s", tc.at, out, want)
		}
	}
}

// childCutOld grows the map at pathEnv while, at the first store after
// the rename, another descriptor truncates the old file to nothing (as
// another local process may), so that marking it superseded faults. It
// prints Grow's error number, whether the map reads and takes writes,
// Close's error number, and the descriptors and mappings of files next
// to the map still open after Close; "alive" last.
func childCutOld() int {
	path := os.Getenv(pathEnv)
	m, size := openToGrow(path)
	if m == nil {
		return 1
	}
	old, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		fmt.Println("open old", err)
		return 1
	}
	ino := inode(old)
	cut := false
	storeHook = func() {
		if !cut && fileIno(path) != ino {
			cut = old.Truncate(0) == nil
		}
	}
	err = m.Grow(int64(2 * size))
	storeHook = nil
	old.Close()
	fmt.Println("grow", wire.AsErrno(err).String(), cut)
	buf := make([]byte, 4096)
	_, err = m.Get(procKey(0), buf)
	fmt.Println("get", wire.AsErrno(err).String())
	fmt.Println("put", wire.AsErrno(m.Put([]byte("after"), []byte("v"))).String())
	fmt.Println("close", wire.AsErrno(m.Close()).String())
	dir := filepath.Dir(path)
	fds, _ := os.ReadDir("/proc/self/fd")
	open := 0
	for _, fd := range fds {
		if l, _ := os.Readlink("/proc/self/fd/" + fd.Name()); strings.HasPrefix(l, dir+"/") {
			open++
		}
	}
	maps, _ := os.ReadFile("/proc/self/maps")
	fmt.Println("fds", open, "maps", strings.Count(string(maps), dir+"/"))
	fmt.Println("alive")
	return 0
}

// openToGrow opens the map at path as a writer for a child that grows
// it and returns it with its file size, or prints why it could not and
// returns nil.
func openToGrow(path string) (*Map, uint64) {
	m, err := Open(path, Options{Timeout: 200 * time.Millisecond})
	if err != nil {
		fmt.Println("open", err)
		return nil, 0
	}
	st, err := m.Stats()
	if err != nil {
		fmt.Println("stats", err)
		return nil, 0
	}
	return m, st.FileSize
}

// fileIno returns the inode number path names, 0 if none.
func fileIno(path string) uint64 {
	var st unix.Stat_t
	if unix.Stat(path, &st) != nil {
		return 0
	}
	return uint64(st.Ino)
}

// childCutOldElsewhere opens the map at pathEnv twice, as two processes
// would; the second grows it and, at the first store after the rename,
// truncates the old file (as another local process may) before it is
// marked superseded. It prints the first Map's answers to Get twice, and
// to Put; "alive" last.
func childCutOldElsewhere() int {
	path := os.Getenv(pathEnv)
	first, err := Open(path, Options{Timeout: 200 * time.Millisecond})
	if err != nil {
		fmt.Println("open", err)
		return 1
	}
	m, size := openToGrow(path)
	if m == nil {
		return 1
	}
	ino := inode(first.cur.Load().f)
	cut := false
	storeHook = func() {
		if !cut && fileIno(path) != ino {
			cut = first.cur.Load().f.Truncate(0) == nil
		}
	}
	err = m.Grow(int64(2 * size))
	storeHook = nil
	fmt.Println("grow", wire.AsErrno(err).String(), cut)
	buf := make([]byte, 4096)
	for i := 0; i < 2; i++ {
		_, err = first.Get(procKey(0), buf)
		fmt.Println("get", wire.AsErrno(err).String())
	}
	fmt.Println("put", wire.AsErrno(first.Put([]byte("after"), []byte("v"))).String())
	fmt.Println("alive")
	return 0
}

// TestOldTruncatedDuringGrow: a local process that truncated the old
// file after Grow renamed the new one over the path made Grow's mark of
// the old file fault. The growing Map kept the old, truncated mapping as
// current (every later call EPROTO), and the new mapping, its descriptor
// and its lock slot were never released, not even by Close ("grower");
// another Map of the old file faulted on every call and never looked at
// the path again, where the new file was ("elsewhere"). Grow now reports
// the fault and its Map goes on with the new file, which Close releases;
// the other Map's faulting call fails and its next one uses the new file.
func TestOldTruncatedDuringGrow(t *testing.T) {
	for _, tc := range []struct{ name, role, want string }{
		{"grower", "cutold", "grow EPROTO true\nget OK\nput OK\nclose OK\nfds 0 maps 0\nalive\n"},
		{"elsewhere", "cutoldelsewhere", "grow EPROTO true\nget EPROTO\nget OK\nput OK\nalive\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := runChild(t, tc.role, pathEnv+"="+truncatedMap(t))
			if string(out) != tc.want {
				t.Fatalf("child said:\n%s\nwant:\n%s", out, tc.want)
			}
		})
	}
}
