# The targets CI runs (.ci/run) and a newcomer uses.
GO          ?= go
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: test lint bench bench-smoke fuzz

# The whole test suite, with the race detector.
test:
	CGO_ENABLED=1 $(GO) test -race -count=1 ./...

lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

# Benchmarks as reported in bench/README.md.
bench:
	$(GO) test -run='^$$' -bench=. -benchmem -count=5 ./...

# Every benchmark once, so that they keep compiling and running.
bench-smoke:
	$(GO) test -run='^$$' -bench=. -benchtime=1x ./...

# A short fuzzing run of every fuzz target.
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=20s $$pkg || exit 1; \
	  done; \
	done
