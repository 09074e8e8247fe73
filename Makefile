# berth's build, demo and test entry points. Run as root: the demo runs
# containers and the test suite includes privileged tests.

SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin:/usr/lib/go-1.23/bin
export GOTOOLCHAIN ?= auto
export GOFLAGS ?= -buildvcs=false

BIN      ?= bin/berth
PKGS     ?= ./...
TIMEOUT  ?= 40m

# The privileged suite that also runs on pure cgroup v2 inside the qemu
# guest (.ci/v2guest): PKG[:RUN_REGEXP][@VAR=VALUE] words. Emulation is
# slow, so it is the runtime, cgroups and seccomp suites in full (the
# runtime's twice: with the C init for every container it can start, and
# without), the OCI runtime CLI, the
# overlay rootfs tests, and whole stacks through the berth binary (networks,
# published ports, health-gated chain, volumes). (The netstack package's own
# tests drive iproute2's ip netns, which the busybox guest does not have.)
V2_SUITE ?= ./supervisor/runtime/cgroups ./supervisor/runtime ./supervisor/runtime/seccomp \
	./supervisor/runtime@BERTH_TEST_CINIT=1 \
	'./cmd/berth:TestRuntimeCLI' \
	'./supervisor/image:Overlay|Prepare' \
	'./supervisor/e2e:TestPublishedStackCommands|TestChainUpInOrder|TestVolumesStack'

.PHONY: all build init-bin deps demo test test-unit test-privileged test-v2 lint clean

all: build

deps:
	bash .ci/install-deps

# berth embeds its container init (supervisor/runtime/initbin): a small
# pure-Go binary built first, from the same tree. A plain
# `go build ./cmd/berth` works too; its containers start with berth itself
# as their init, which costs more CPU per start.
INIT_BIN := supervisor/runtime/initbin/berth-init
EXEC_BIN := supervisor/runtime/initbin/berth-exec
CINIT_BIN := supervisor/runtime/initbin/berth-cinit

build: init-bin
	go build -tags berth_init -o $(BIN) ./cmd/berth

# Built to a temporary name and renamed, so that concurrent builds (test
# harnesses) never embed half a file. The tag berth_initonly leaves out
# what only the runtime's parent side uses (the cgroup v2 device filter's
# eBPF loader and its 35 packages).
# berth-exec is the same program with cgo, static: the init of exec.
# berth-cinit is the C init of the common container (runtime/cinit_linux.go).
init-bin:
	CGO_ENABLED=0 go build -tags berth_initonly -trimpath -ldflags '-s -w' -o $(INIT_BIN).$$$$ ./supervisor/runtime/berth-init && mv -f $(INIT_BIN).$$$$ $(INIT_BIN)
	CGO_ENABLED=1 go build -tags 'berth_initonly netgo osusergo' -trimpath -ldflags '-s -w -extldflags=-static' -o $(EXEC_BIN).$$$$ ./supervisor/runtime/berth-init && mv -f $(EXEC_BIN).$$$$ $(EXEC_BIN)
	$(CC) -O2 -static -s -Wall -Werror -o $(CINIT_BIN).$$$$ supervisor/runtime/cinit/cinit.c supervisor/runtime/nsenter/nsenter.c && mv -f $(CINIT_BIN).$$$$ $(CINIT_BIN)

# A static build, for the cgroup v2 guest.
bin/berth-static: init-bin
	CGO_ENABLED=1 go build -tags berth_init -ldflags '-extldflags=-static' -o $@ ./cmd/berth

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	go vet ./...

# The demo: build berth and run the example stack.
demo: deps build
	bash examples/demo.sh $(BIN)

# The whole test suite: lint, unit and privileged tests on this host
# (cgroup v1 or v2, whichever it runs), then the privileged cgroup v2
# suite inside a qemu guest. -count=1: privileged tests depend on the
# kernel, not only on their inputs, so cached results do not count.
test: deps lint
	bash .ci/leakcheck snapshot /tmp/berth-leakcheck
	$(MAKE) build
	BERTH_PRIVILEGED=1 BERTH_E2E_BINARY=$(abspath $(BIN)) go test -count=1 -timeout $(TIMEOUT) $(PKGS)
	# the runtime's suite again, every container it can on the C init
	BERTH_PRIVILEGED=1 BERTH_TEST_CINIT=1 go test -count=1 -timeout $(TIMEOUT) ./supervisor/runtime
	bash .ci/leakcheck compare /tmp/berth-leakcheck
	$(MAKE) test-v2

test-unit:
	go test -timeout $(TIMEOUT) $(PKGS)

test-privileged:
	BERTH_PRIVILEGED=1 go test -timeout $(TIMEOUT) $(PKGS)

test-v2:
	bash .ci/v2guest/run.sh -t 1800 $(V2_SUITE)

clean:
	rm -rf bin
