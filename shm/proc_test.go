package shm

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"fastcall/lock/proctest"
	"fastcall/wire"

	"github.com/cespare/xxhash/v2"
)

// Multi-process tests re-exec the test binary (lock/proctest) in a child
// role; its parameters are the SHM_TEST_* variables.
const (
	pathEnv    = "SHM_TEST_PATH"
	logEnv     = "SHM_TEST_LOG"
	seedEnv    = "SHM_TEST_SEED"
	durEnv     = "SHM_TEST_DUR"
	opEnv      = "SHM_TEST_OP"
	stopEnv    = "SHM_TEST_STOP"
	keySpace   = 2000
	sumSize    = 8
	maxPayload = 200
)

func TestMain(m *testing.M) {
	proctest.Main(m, map[string]func() int{
		"writer":          childWriter,
		"reader":          childReader,
		"stopper":         childStopper,
		"growstopper":     childGrowStopper,
		"truncated":       childTruncated,
		"cutscratch":      childCutScratch,
		"cutopen":         childCutOpen,
		"cutold":          childCutOld,
		"cutoldelsewhere": childCutOldElsewhere,
	})
}

func procKey(i int) []byte { return []byte(fmt.Sprintf("key-%05d", i)) }

// sealedValue is a value that carries its own checksum: xxhash of the
// payload, then the payload.
func sealedValue(rng *rand.Rand) []byte {
	v := make([]byte, sumSize+rng.IntN(maxPayload))
	for i := sumSize; i < len(v); i++ {
		v[i] = byte(rng.Uint32())
	}
	binary.LittleEndian.PutUint64(v, xxhash.Sum64(v[sumSize:]))
	return v
}

func sealedOK(v []byte) bool {
	return len(v) >= sumSize && binary.LittleEndian.Uint64(v) == xxhash.Sum64(v[sumSize:])
}

// opLog is the writer child's log: a shared file mapping, so that appending
// costs no system call (the writer spends its time inside Put, where kills
// matter) and a SIGKILL loses nothing already stored.
type opLog struct {
	mem []byte
	n   int
}

const opLogSize = 16 << 20

func (l *opLog) add(s string) bool {
	if l.n+len(s) > len(l.mem) {
		return false
	}
	l.n += copy(l.mem[l.n:], s)
	return true
}

// childWriter puts and deletes sealed values. With a log, it appends the
// intent "P key sum" or "D key" before each operation and "ok" after it
// returns, so that a SIGKILL loses at most the outcome of the one operation
// in flight. It runs until the duration, a full log, or a kill.
func childWriter() int {
	seed, _ := strconv.ParseUint(os.Getenv(seedEnv), 10, 64)
	dur, _ := time.ParseDuration(os.Getenv(durEnv))
	m, err := Open(os.Getenv(pathEnv), Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "writer open:", err)
		return 1
	}
	var log *opLog
	if p := os.Getenv(logEnv); p != "" {
		f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil || f.Truncate(opLogSize) != nil {
			return 1
		}
		mem, err := syscall.Mmap(int(f.Fd()), 0, opLogSize, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
		if err != nil {
			return 1
		}
		log = &opLog{mem: mem}
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	end := time.Now().Add(dur)
	for n := 0; dur == 0 || time.Now().Before(end); n++ {
		k := procKey(rng.IntN(keySpace))
		if rng.IntN(5) == 0 {
			if log != nil && !log.add("D "+string(k)+"\n") {
				return 0
			}
			if err := m.Delete(k); err != nil && !errors.Is(err, wire.ENOENT) {
				fmt.Fprintln(os.Stderr, "writer delete:", err)
				return 1
			}
		} else {
			v := sealedValue(rng)
			if log != nil && !log.add("P "+string(k)+" "+strconv.FormatUint(xxhash.Sum64(v), 16)+"\n") {
				return 0
			}
			if err := m.Put(k, v); err != nil {
				fmt.Fprintln(os.Stderr, "writer put:", err)
				return 1
			}
		}
		if log != nil {
			log.add("ok\n")
		}
	}
	return 0
}

// childStopper runs one write, "put KEY" or "delete KEY", and kills its
// own process with SIGKILL just before the write's n-th store to the
// mapping, n from stopEnv. It exits 0 if the write completed first.
func childStopper() int {
	n, _ := strconv.Atoi(os.Getenv(stopEnv))
	op := strings.Fields(os.Getenv(opEnv))
	m, err := Open(os.Getenv(pathEnv), Options{})
	if err != nil || len(op) != 2 {
		fmt.Fprintln(os.Stderr, "stopper:", err, op)
		return 1
	}
	count := 0
	storeHook = func() {
		count++
		if count == n {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	}
	if op[0] == "put" {
		err = m.Put([]byte(op[1]), []byte("written by the stopper"))
	} else {
		err = m.Delete([]byte(op[1]))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "stopper:", err)
		return 1
	}
	return 0
}

// childGrowStopper grows the map at pathEnv to twice its size and kills
// its own process with SIGKILL at the first store after the new file was
// renamed over the path: the store that would mark the old file
// superseded. It exits 0 if the Grow completed first.
func childGrowStopper() int {
	path := os.Getenv(pathEnv)
	m, err := Open(path, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "growstopper:", err)
		return 1
	}
	st, err := m.Stats()
	if err != nil {
		fmt.Fprintln(os.Stderr, "growstopper:", err)
		return 1
	}
	ino := inode(m.cur.Load().f)
	storeHook = func() {
		var now syscall.Stat_t
		if syscall.Stat(path, &now) == nil && now.Ino != ino {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	}
	if err := m.Grow(int64(2 * st.FileSize)); err != nil {
		fmt.Fprintln(os.Stderr, "growstopper:", err)
		return 1
	}
	return 0
}

// childReader reads random keys and ranges for the duration and checks
// every value's own checksum.
func childReader() int {
	seed, _ := strconv.ParseUint(os.Getenv(seedEnv), 10, 64)
	dur, _ := time.ParseDuration(os.Getenv(durEnv))
	m, err := Open(os.Getenv(pathEnv), Options{ReadOnly: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, "reader open:", err)
		return 1
	}
	rng := rand.New(rand.NewPCG(seed, seed))
	buf := make([]byte, sumSize+maxPayload)
	bad, reads := 0, 0
	for end := time.Now().Add(dur); time.Now().Before(end); {
		if rng.IntN(10) == 0 {
			from := procKey(rng.IntN(keySpace))
			err = m.Range(from, nil, func(k, v []byte) bool {
				reads++
				if !sealedOK(v) {
					bad++
				}
				return reads%50 != 0
			})
		} else {
			var n int
			n, err = m.Get(procKey(rng.IntN(keySpace)), buf)
			if err == nil {
				reads++
				if !sealedOK(buf[:n]) {
					bad++
				}
			} else if errors.Is(err, wire.ENOENT) {
				err = nil
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "reader:", err)
			return 1
		}
	}
	fmt.Println(reads)
	if bad != 0 || reads == 0 {
		fmt.Fprintln(os.Stderr, "reader: bad values", bad, "of", reads)
		return 2
	}
	return 0
}

// TestWriterAndReaders runs one writer process and three reader processes
// on the same file at once; every value read verifies its own checksum.
func TestWriterAndReaders(t *testing.T) {
	_, p := mustCreate(t, 4<<20)
	env := []string{pathEnv + "=" + p, durEnv + "=1500ms"}
	w := proctest.Command("writer", append(env, seedEnv+"=1")...)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	var readers []*exec.Cmd
	var outs []*strings.Builder
	for i := 0; i < 3; i++ {
		r := proctest.Command("reader", append(env, seedEnv+"="+strconv.Itoa(10+i))...)
		out := &strings.Builder{}
		r.Stdout = out
		if err := r.Start(); err != nil {
			t.Fatal(err)
		}
		readers = append(readers, r)
		outs = append(outs, out)
	}
	if err := w.Wait(); err != nil {
		t.Fatalf("writer: %v", err)
	}
	for i, r := range readers {
		if err := r.Wait(); err != nil {
			t.Fatalf("reader %d: %v", i, err)
		}
		t.Logf("reader %d: %s values checked", i, strings.TrimSpace(outs[i].String()))
	}
	m, err := Open(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	strictVerify(t, m)
}

// strictVerify checks the current mapping with no crash residue allowed.
func strictVerify(t *testing.T, m *Map) {
	t.Helper()
	mp, err := m.wlock()
	if err != nil {
		t.Fatal(err)
	}
	defer mp.unlockWrite()
	if err := mp.r.verify(true); err != nil {
		t.Fatal(err)
	}
}

// readKey reads key through Get and through Range, which must agree; ""
// means absent.
func readKey(t *testing.T, m *Map, key string) string {
	t.Helper()
	buf := make([]byte, 64)
	got := ""
	n, err := m.Get([]byte(key), buf)
	switch {
	case err == nil:
		got = string(buf[:n])
	case !errors.Is(err, wire.ENOENT):
		t.Fatalf("get %s: %v", key, err)
	}
	ranged := ""
	err = m.Range([]byte(key), []byte(key+"\x00"), func(k, v []byte) bool {
		ranged = string(v)
		return true
	})
	if err != nil {
		t.Fatalf("range %s: %v", key, err)
	}
	if got != ranged {
		t.Fatalf("key %s: Get reads %q, Range reads %q", key, got, ranged)
	}
	return got
}

// TestKillWriterAtStore kills a writer process (SIGKILL) just before each
// store of a Delete, and of a Put that inserts, in turn. After each kill
// the key reads the same through Get and Range, and it still reads the
// same after the next writer has repaired the file: a delete that readers
// saw done stays done, an insert they did not see stays undone. (Before
// hidden nodes, a Delete killed after it had tombstoned the index slot but
// before it unlinked the node read absent through Get, and the repair,
// which rebuilds the index from level 0, brought the key back.)
func TestKillWriterAtStore(t *testing.T) {
	const key = "key-01000"
	for _, op := range []string{"delete", "put"} {
		t.Run(op, func(t *testing.T) {
			m, p := mustCreate(t, 1<<20)
			for i := 0; i < 64; i++ {
				if err := m.Put(procKey(i*31), []byte("other")); err != nil {
					t.Fatal(err)
				}
			}
			kills := 0
			for n := 1; ; n++ {
				// The state before the write: key present for a delete,
				// absent for a put.
				if op == "delete" {
					if err := m.Put([]byte(key), []byte("before")); err != nil {
						t.Fatal(err)
					}
				} else if err := m.Delete([]byte(key)); err != nil && !errors.Is(err, wire.ENOENT) {
					t.Fatal(err)
				}
				c := proctest.Command("stopper", pathEnv+"="+p, opEnv+"="+op+" "+key, stopEnv+"="+strconv.Itoa(n))
				err := c.Run()
				if err == nil {
					break
				}
				if ws, ok := c.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
					t.Fatalf("stop %d: stopper: %v", n, err)
				}
				kills++
				// The first store is the write sequence going odd; a writer
				// killed after it leaves it odd, which keeps Get on the lock.
				r := m.cur.Load().r
				if odd := load64(r.mem, hdrWriteSeqOff)&1 != 0; odd != (n > 1) {
					t.Fatalf("stop %d: write sequence odd %v", n, odd)
				}
				if err := m.Verify(); err != nil {
					t.Fatalf("stop %d: verify before repair: %v", n, err)
				}
				seen := readKey(t, m, key)
				if seen != "before" && seen != "" && seen != "written by the stopper" {
					t.Fatalf("stop %d: key reads %q", n, seen)
				}
				// The next writer repairs.
				if err := m.Put([]byte("probe"), []byte("x")); err != nil {
					t.Fatalf("stop %d: put after kill: %v", n, err)
				}
				strictVerify(t, m)
				if load64(r.mem, hdrWriteSeqOff)&1 != 0 {
					t.Fatalf("stop %d: write sequence odd after the repair", n)
				}
				if got := readKey(t, m, key); got != seen {
					t.Fatalf("stop %d: key reads %q after the kill, %q after the repair", n, seen, got)
				}
			}
			if kills == 0 {
				t.Fatal("the write made no stores")
			}
			want := ""
			if op == "put" {
				want = "written by the stopper"
			}
			if got := readKey(t, m, key); got != want {
				t.Fatalf("completed %s: key reads %q", op, got)
			}
			t.Logf("%s killed at each of %d stores", op, kills)
		})
	}
}

// keyState is the reference for one key: its value's hash, or absent.
type keyState struct {
	present bool
	sum     uint64
}

// TestKillWriter kills a writer process with SIGKILL at random moments,
// many times. After each kill the file opens, verifies (tolerant: before any
// writer has repaired it), serves every acknowledged key, and after the
// next writer's repair verifies strictly. The write in flight at the kill
// is taken as it reads before the repair; later rounds check that the
// repair kept it so.
func TestKillWriter(t *testing.T) {
	rounds := 30
	if testing.Short() {
		rounds = 8
	}
	_, p := mustCreate(t, 2<<20)
	logPath := p + ".log"
	model := map[string]keyState{}
	rng := rand.New(rand.NewPCG(7, 7))
	buf := make([]byte, sumSize+maxPayload)
	held := 0
	totalAcked := 0
	for round := 0; round < rounds; round++ {
		os.Remove(logPath)
		w := proctest.Command("writer", pathEnv+"="+p, logEnv+"="+logPath, seedEnv+"="+strconv.Itoa(100+round), durEnv+"=0")
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		// Wait until the child writes (its start-up is slow under -race),
		// then let it run a random while before the kill.
		for start := time.Now(); time.Since(start) < 20*time.Second; time.Sleep(time.Millisecond) {
			if logStarted(logPath) {
				break
			}
		}
		time.Sleep(time.Duration(5+rng.IntN(40)) * time.Millisecond)
		w.Process.Signal(syscall.SIGKILL)
		w.Wait()

		// Replay the log: every "ok" acknowledges the intent before it. The
		// child starts writing "ok" only once the operation has returned,
		// so a kill that cut the word short ("o") acknowledges too.
		f, err := os.Open(logPath)
		if err != nil {
			t.Fatal(err)
		}
		var inflight string
		acked := 0
		sc := bufio.NewScanner(bufio.NewReader(&zeroStop{f}))
		for sc.Scan() {
			line := sc.Text()
			if line == "ok" || line == "o" {
				fs := strings.Fields(inflight)
				if fs[0] == "P" {
					sum, _ := strconv.ParseUint(fs[2], 16, 64)
					model[fs[1]] = keyState{true, sum}
				} else {
					model[fs[1]] = keyState{}
				}
				inflight = ""
				acked++
				continue
			}
			inflight = line
		}
		f.Close()
		// A kill can land before the first acknowledgement; the reopen
		// below is checked all the same.
		totalAcked += acked

		m, err := Open(p, Options{})
		if err != nil {
			t.Fatalf("round %d: open: %v", round, err)
		}
		if err := m.Verify(); err != nil {
			t.Fatalf("round %d: verify before repair: %v", round, err)
		}
		fs := strings.Fields(inflight)
		for k, want := range model {
			n, err := m.Get([]byte(k), buf)
			got := keyState{present: err == nil}
			if err == nil {
				if !sealedOK(buf[:n]) {
					t.Fatalf("round %d: torn value for %s", round, k)
				}
				got.sum = xxhash.Sum64(buf[:n])
			} else if !errors.Is(err, wire.ENOENT) {
				t.Fatalf("round %d: get %s: %v", round, k, err)
			}
			if got == want {
				continue
			}
			if len(fs) > 1 && fs[1] == k {
				// The operation in flight may or may not have happened.
				model[k] = got
				continue
			}
			t.Fatalf("round %d: key %s: got %+v want %+v (acked %d)", round, k, got, want, acked)
		}
		// The next writer repairs (if the child died holding the lock).
		if err := m.Put([]byte("probe"), []byte("x")); err != nil {
			t.Fatalf("round %d: put after kill: %v", round, err)
		}
		strictVerify(t, m)
		st, _ := m.Stats()
		held = int(st.Repairs)
		m.Close()
	}
	if totalAcked == 0 {
		t.Fatal("the writer acknowledged nothing in any round")
	}
	t.Logf("%d rounds, %d writes acknowledged, %d repairs after a writer died holding the lock, %d keys tracked", rounds, totalAcked, held, len(model))
}

// zeroStop reads until the first zero byte (the unwritten tail of the log).
type zeroStop struct{ f *os.File }

func (z *zeroStop) Read(b []byte) (int, error) {
	n, err := z.f.Read(b)
	for i := 0; i < n; i++ {
		if b[i] == 0 {
			return i, io.EOF
		}
	}
	return n, err
}

// logStarted reports whether the writer child has logged its first intent.
func logStarted(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var b [1]byte
	n, _ := f.ReadAt(b[:], 0)
	return n == 1 && b[0] != 0
}
