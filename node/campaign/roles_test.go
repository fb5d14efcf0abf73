package campaign

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"fastcall/node/builtin"
	"fastcall/rfc"
	"fastcall/rfc/rfctest"
)

// clientResult is what a client role reports on stdout.
type clientResult struct {
	OK     int            `json:"ok"`
	Errors map[string]int `json:"errors"`
	Dups   int            `json:"dups"`
}

// roleClient makes FASTCALL_CALLS increments spread over the addresses in
// FASTCALL_TARGETS and prints a clientResult.
func roleClient() int {
	var targets []netip.AddrPort
	for _, s := range strings.Split(os.Getenv("FASTCALL_TARGETS"), ",") {
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		targets = append(targets, ap)
	}
	var calls int
	fmt.Sscan(os.Getenv("FASTCALL_CALLS"), &calls)
	cfg := rfctest.Config(0)
	cfg.Key = testKey
	cfg.Addr = os.Getenv("FASTCALL_BIND")
	ep, err := rfc.Listen(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer ep.Close()
	log := newIncrLog()
	var wg sync.WaitGroup
	per := calls / 8
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			var rep rfc.Reply
			for i := 0; i < per; i++ {
				log.incr(ep, targets[(g+i)%len(targets)], builtin.CallIncr, 2*time.Second, &rep)
			}
		}(g)
	}
	wg.Wait()
	res := clientResult{OK: log.ok, Errors: map[string]int{}, Dups: log.dups}
	for e, n := range log.errs {
		res.Errors[e.String()] += n
	}
	json.NewEncoder(os.Stdout).Encode(res)
	return 0
}
