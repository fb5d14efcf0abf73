# fastcall build, test, fuzz and benchmark entry points.
GO        ?= go
FUZZTIME  ?= 60s
TESTFUZZ  ?= 3s
PKGS      := ./...

.PHONY: all build test vet fmtcheck unit fuzz-smoke fuzz bench demo reliability linz sim mutate clean FORCE

all: build

build:
	$(GO) build $(PKGS)

fmtcheck:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

unit:
	$(GO) test -race -count=1 -timeout 15m $(PKGS)

# Every fuzz target in ./fuzz, each for $(1). Go 1.26's fuzz coordinator
# can report "context deadline exceeded" as the -fuzztime window closes
# while a worker is mid-input (go.dev/issue/75804): no input failed and
# none is written. A run that ends that way, with no failing input, is run
# again (twice at most); any other failure fails at once.
define run_fuzz
	@set -e; [ -d fuzz ] || exit 0; log=$$(mktemp); trap 'rm -f $$log' EXIT; \
	for t in $$($(GO) test -list '^Fuzz' ./fuzz | grep '^Fuzz'); do \
		for try in 1 2 3; do \
			echo "fuzz $$t ($(1))"; \
			if $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(1) ./fuzz >$$log 2>&1; then cat $$log; break; fi; \
			cat $$log; \
			if [ $$try = 3 ] || ! grep -q 'context deadline exceeded' $$log || grep -q 'Failing input written' $$log; then exit 1; fi; \
			echo "fuzz $$t: the coordinator's deadline race, no failing input: again"; \
		done; \
	done
endef

fuzz-smoke:
	$(call run_fuzz,$(TESTFUZZ))

fuzz:
	$(call run_fuzz,$(FUZZTIME))

test: fmtcheck vet unit fuzz-smoke

# The deterministic simulation (docs/SIMULATION.md). make sim runs SEEDS
# seeds of every scenario from BASE (default: the current time, so that
# each run explores new seeds); make sim SEED=S replays one seed twice,
# prints its trace (the last TRACE events) and checks that both runs have
# the same trace hash. SCENARIO=RFC (the name after TestSim) picks one.
# make test runs a few fixed seeds of each scenario within make unit.
SEEDS     ?= 200
TRACE     ?= 400
SIMTIME   ?= 20s
SCENARIO  ?=
sim:
ifdef SEED
	$(GO) test -count=1 -v -timeout 10m -run '^TestSim$(SCENARIO)' ./node/sim -args -sim.seed=$(SEED) -sim.time=$(SIMTIME) -sim.trace=$(TRACE)
else
	$(GO) test -count=1 -timeout 60m -run '^TestSim$(SCENARIO)' ./node/sim -args -sim.seeds=$(SEEDS) -sim.time=$(SIMTIME) -sim.base=$(or $(BASE),$(shell date +%s))
endif

# Mutation testing with gremlins, installed at a pinned version from the
# module proxy into MUTATE_OUT (it is not a dependency of the main module). Each package
# gets MUTATE_BUDGET; a package cut off by its budget reports the mutants
# tested so far. Tests run with -short (GOFLAGS). Efficacy is killed (and
# timed out) over killed plus lived; docs/TESTING.md lists the survivors.
GREMLINS       ?= github.com/go-gremlins/gremlins/cmd/gremlins@v0.6.0
MUTATE_PKGS    ?= wire lock shm rfc node/registry node/dispatch
MUTATE_BUDGET  ?= 30m
MUTATE_OUT     ?= /tmp/fastcall-mutate

mutate:
	@mkdir -p $(MUTATE_OUT) && GOBIN=$(MUTATE_OUT)/bin $(GO) install $(GREMLINS)
	@for p in $(MUTATE_PKGS); do \
		out=$(MUTATE_OUT)/$$(echo $$p | tr / -).txt; \
		echo "mutate ./$$p (budget $(MUTATE_BUDGET), log $$out)"; \
		GOFLAGS=-short timeout -k 30s $(MUTATE_BUDGET) $(MUTATE_OUT)/bin/gremlins unleash \
			--workers 1 --test-cpu 1 --timeout-coefficient 5 ./$$p >$$out 2>&1; \
		rc=$$?; part=""; \
		grep -E '^ *(KILLED|TIMED OUT|LIVED) ' $$out >$$out.st; \
		if [ $$rc = 124 ] || [ $$rc = 137 ]; then part=" (budget spent: partial)"; sed -i '$$d' $$out.st; fi; \
		k=$$(grep -c '^ *KILLED' $$out.st); o=$$(grep -c '^ *TIMED OUT' $$out.st); l=$$(grep -c '^ *LIVED' $$out.st); \
		n=$$(grep -c '^ *NOT COVERED' $$out); \
		awk -v p=$$p -v k=$$k -v o=$$o -v l=$$l -v n=$$n -v part="$$part" 'BEGIN { \
			e = (k+o+l) ? 100*(k+o)/(k+o+l) : 0; \
			printf "%-14s killed %d, timed out %d, lived %d, not covered %d: efficacy %.1f%%%s\n", p, k, o, l, n, e, part }'; \
		grep '^ *LIVED' $$out.st | sed 's/^ */    /'; \
	done

bench:
	$(GO) run ./bench/cmd/fcbench -case $(or $(CASE),all) $(BENCHFLAGS)

# The fault campaign at ten times the make-test sizes; writes docs/RELIABILITY.md.
# Then the registry's linearizability check (a nested module): LINZRUNS runs
# of each workload (one key, many keys), LINZDUR each, with a center SIGKILLed
# and restarted every 0.7-1.5 s.
LINZRUNS ?= 20
LINZDUR  ?= 12s
reliability:
	$(GO) test -count=1 -timeout 30m ./node/campaign -args -campaign.long -campaign.report $(CURDIR)/docs/RELIABILITY.md
	cd node/registry/linz && $(GO) test -count=1 -timeout 60m -run TestLinearizableUnderCenterKills -v . \
		-args -linz.runs $(LINZRUNS) -linz.dur $(LINZDUR)

# The short version of the linearizability check: one run of each workload.
linz:
	cd node/registry/linz && $(GO) test -count=1 -timeout 10m -v .

bin/rfcd bin/rfcctl: FORCE
	$(GO) build -o bin/ ./tools/rfcd ./tools/rfcctl

# Nodes on loopback walking through the features; exits non-zero if any
# step misbehaves.
demo: bin/rfcd bin/rfcctl
	bin/rfcctl demo -rfcd bin/rfcd

FORCE:

clean:
	rm -rf bin
	$(GO) clean -testcache
