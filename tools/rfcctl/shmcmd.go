package main

import (
	"encoding/hex"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"time"
	"unicode/utf8"

	"fastcall/lock"
	"fastcall/shm"
	"fastcall/wire"
)

// cmdShm inspects a node's shared-memory map file without any network
// call: stat, dump (in key order, optionally under a prefix), get, verify.
func cmdShm(args []string, stdout, stderr io.Writer) int {
	c := newCommand("shm", "stat|dump|get|verify FILE [KEY|PREFIX]", stderr, withJSON)
	limit := c.fs.Int("n", 1000, "dump: at most this many entries")
	timeout := c.fs.Duration("t", 2*time.Second, "lock wait bound")
	pos, code, ok := c.parse(args, func(pos []string) bool { return len(pos) >= 2 },
		"want stat|dump|get|verify FILE [KEY|PREFIX]")
	if !ok {
		return code
	}
	switch {
	case *timeout <= 0:
		// shm reads 0 as no bound: the command would wait for a held
		// lock without end.
		return usageError(stderr, "shm -t %v: want a positive lock wait bound", *timeout)
	case *limit < 1:
		return usageError(stderr, "shm -n %d: want at least 1", *limit)
	}
	asJSON := c.asJSON
	verb, path := pos[0], pos[1]
	switch verb {
	case "stat", "verify":
		if len(pos) != 2 {
			return usageError(stderr, "shm %s: want FILE", verb)
		}
	case "get":
		if len(pos) != 3 {
			return usageError(stderr, "shm get: want FILE KEY")
		}
	case "dump":
		if len(pos) > 3 {
			return usageError(stderr, "shm dump: want FILE [PREFIX]")
		}
	default:
		return usageError(stderr, "shm: unknown verb %q (stat, dump, get, verify)", verb)
	}
	opts := shm.DefaultOptions()
	opts.ReadOnly = true
	opts.Timeout = *timeout
	fail := func(what string, err error) int {
		fmt.Fprintf(stderr, "rfcctl: shm %s: %v%s\n", what, err, slotsFull(err))
		return 1
	}
	m, err := shm.Open(path, opts)
	if err != nil {
		return fail(path, err)
	}
	defer m.Close()
	switch verb {
	case "stat":
		st, err := m.Stats()
		if err != nil {
			return fail("stat", err)
		}
		if *asJSON {
			printJSON(stdout, st)
			return 0
		}
		fmt.Fprintf(stdout, "file        %s\ngeneration  %d\nsize        %d bytes (arena %d)\nused        %d bytes\nfree        %d bytes (+%d never used)\nkeys        %d\nlevels      %d\nindex       %d of %d slots in use, %d live, %d tombstones\nwrites      %d\nrepairs     %d\n",
			path, st.Generation, st.FileSize, st.ArenaSize, st.UsedBytes, st.FreeBytes, st.TailBytes, st.Nodes, st.Levels,
			st.IndexInUse, st.IndexSlots, st.IndexLive, st.IndexTombs, st.Writes, st.Repairs)
	case "verify":
		if err := m.Verify(); err != nil {
			fmt.Fprintf(stdout, "%s: damaged: %v\n", path, err)
			return 1
		}
		fmt.Fprintf(stdout, "%s: ok\n", path)
	case "get":
		var out []byte
		err := m.View([]byte(pos[2]), func(v []byte) { out = append(out, v...) })
		if err != nil {
			fmt.Fprintf(stdout, "%s: %s%s\n", pos[2], errName(err), slotsFull(err))
			return 1
		}
		if *asJSON {
			printJSON(stdout, map[string]string{"key": pos[2], "value": printable(out)})
		} else {
			fmt.Fprintln(stdout, printable(out))
		}
	case "dump":
		var prefix []byte
		if len(pos) == 3 {
			prefix = []byte(pos[2])
		}
		n := 0
		var rows []map[string]string
		err := m.Prefix(prefix, func(k, v []byte) bool {
			if *asJSON {
				rows = append(rows, map[string]string{"key": printable(k), "value": printable(v)})
			} else {
				fmt.Fprintf(stdout, "%s\t%s\n", printable(k), printable(v))
			}
			n++
			return n < *limit
		})
		if err != nil {
			return fail("dump", err)
		}
		if *asJSON {
			printJSON(stdout, rows)
		}
	}
	return 0
}

// slotsFull says which bound an ENOSPC of a read-only map is, to follow
// the error's name; "" for any other error. It is no full disk: a reader
// writes nothing but its holder slot of the map's lock, taken when the
// map is opened (or opened again after the file was replaced), and every
// slot was held by a live process.
func slotsFull(err error) string {
	if wire.AsErrno(err) != wire.ENOSPC {
		return ""
	}
	return fmt.Sprintf(": all %d holder slots of the map's lock (lock.Slots) are held by live processes", lock.Slots)
}

// printable returns b as text when it is valid UTF-8 of printable runes
// only (strconv.IsPrint: letters, marks, numbers, punctuation, symbols
// and the ASCII space), else as hex prefixed with 0x. Text from the
// network or a map (keys, names, values, counters, audit records:
// anyone's writes) is printed through it, so that no newline, tab,
// control or format character of it reaches the table or the terminal.
// Quotes and backslashes are printable: the rendered parameters of an
// audit record (wire.AppendValue) stay text.
func printable(b []byte) string {
	if isPrintable(b) {
		return string(b)
	}
	return "0x" + hex.EncodeToString(b)
}

// isPrintable reports whether b is valid UTF-8 of printable runes only.
func isPrintable(b []byte) bool {
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if (r == utf8.RuneError && n <= 1) || !strconv.IsPrint(r) {
			return false
		}
		b = b[n:]
	}
	return true
}

// printableString is printable for a string.
func printableString(s string) string { return printable([]byte(s)) }

// printableAddr is printable for an address read from the network or the
// registry: an IPv6 zone is any text netip takes, control characters
// included.
func printableAddr(a netip.AddrPort) string { return printableString(a.String()) }
