package campaign

import (
	"fastcall/lock/proctest"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	reportPath = flag.String("campaign.report", "", "write the results table to this file (docs/RELIABILITY.md)")
	long       = flag.Bool("campaign.long", false, "run ten times larger workloads")
)

// row is one line of docs/RELIABILITY.md.
type row struct {
	Fault   string
	Params  string
	Load    string
	Checked string
	Result  string
}

var (
	rowsMu sync.Mutex
	rows   = map[string]row{}
)

func record(t *testing.T, r row) {
	rowsMu.Lock()
	rows[t.Name()] = r
	rowsMu.Unlock()
	t.Logf("%s | %s | %s | %s | %s", r.Fault, r.Params, r.Load, r.Checked, r.Result)
}

func scale(n int) int {
	if *long {
		return 10 * n
	}
	return n
}

var binDir string

func TestMain(m *testing.M) {
	flag.Parse()
	proctest.RunRole(map[string]func() int{"client": roleClient})
	dir, err := os.MkdirTemp("", "campaign")
	if err != nil {
		panic(err)
	}
	binDir = dir
	out, err := exec.Command("go", "build", "-o", dir, "fastcall/tools/rfcd").CombinedOutput()
	if err != nil {
		panic("build rfcd: " + err.Error() + "\n" + string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 && *reportPath != "" {
		if err := writeReport(*reportPath); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

func writeReport(path string) error {
	var b strings.Builder
	b.WriteString("# fastcall reliability campaign\n\n")
	by := "`go test ./node/campaign -args -campaign.report " + filepath.Base(path) + "`"
	if *long {
		by = "`make reliability` (`go test ./node/campaign -args -campaign.long -campaign.report docs/RELIABILITY.md`)"
	}
	fmt.Fprintf(&b, "Written by %s on %s; every row is a test that passed in that run.\n\n", by, time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	b.WriteString("| fault or attack | parameters | load | checked | result |\n|---|---|---|---|---|\n")
	names := make([]string, 0, len(rows))
	for n := range rows {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		r := rows[n]
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", r.Fault, r.Params, r.Load, r.Checked, r.Result)
	}
	b.WriteString("\nThe table above is rewritten by each run; the fuzzing section below is kept.\n")
	if old, err := os.ReadFile(path); err == nil {
		if i := strings.Index(string(old), "\n## Fuzzing"); i >= 0 {
			b.WriteString(string(old[i:]))
		}
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
