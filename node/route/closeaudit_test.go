package route

import (
	"bufio"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"fastcall/node/route/audit"
	"fastcall/rfc/simnet"
)

// TestCloseAuditsCallsInFlight: a routed call forwarded before Close and
// answered after it has its audit record. The member's reply was on its
// way when the router closed; the router still answered the client, but
// the writer had stopped, so the record stayed in the queue: an
// acknowledged call with no record, and none counted as dropped.
func TestCloseAuditsCallsInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fs := audit.NewMemFS()
		sc := newSimCluster(t, func(c *Config) {
			c.AuditDir = "/audit"
			c.AuditFS = fs
		})
		sc.net.SetFaults(sc.meps[0].Addr(), sc.rep.Addr(), simnet.Faults{Delay: simnet.Dist{Base: 100 * time.Millisecond}})
		done := sc.goPut(t, "/c1/k")
		time.Sleep(50 * time.Millisecond)
		sc.router.Close()
		err := <-done
		records := 0
		seqs, ferr := audit.Files(fs, "/audit")
		if ferr != nil {
			t.Fatal(ferr)
		}
		for _, s := range seqs {
			f, ferr := fs.Open(filepath.Join("/audit", audit.FileName(s)))
			if ferr != nil {
				t.Fatal(ferr)
			}
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				if strings.Contains(sc.Text(), "\tns-put\t") {
					records++
				}
			}
			f.Close()
		}
		st := sc.router.AuditStats()
		t.Logf("put: %v; records %d, written %d, dropped %d", err, records, st.Written, st.Dropped)
		if err == nil && records != 1 && st.Dropped == 0 {
			t.Errorf("put answered OK after Close: %d audit records, none counted dropped", records)
		}
	})
}
