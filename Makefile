# The targets CI runs (.ci/run) and a newcomer uses.
GO          ?= go
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: test test-go test-web lint bench bench-smoke fuzz example

# The whole test suite: Go with the race detector, then the browser package.
test: test-go test-web

test-go:
	CGO_ENABLED=1 $(GO) test -race -count=1 ./...

# web/: unit tests (node --test, fake timers), then end to end in Chromium
# (Debian's chromium at /usr/bin/chromium, or $$CHROMIUM) against a real
# tokend serve. Needs Node.js 20 and npm.
test-web:
	cd web && npm ci --no-audit --no-fund && npm test
	cd web/e2e && npm ci --no-audit --no-fund && npm test

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

# The login example (examples/login-app): builds the browser package it
# serves (web/dist; needs Node.js 20 and npm), then runs it on
# http://127.0.0.1:8080 with the user alice, password wonderland.
example:
	cd web && npm ci --no-audit --no-fund && npm run build
	$(GO) run ./examples/login-app
