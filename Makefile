# kiln's build, test and demo targets. Go is taken from PATH, or from
# /usr/local/go/bin where the machine keeps it.
export PATH := $(PATH):/usr/local/go/bin
GO ?= go

.PHONY: all build test unit e2e soak fuzz demo deps bench vet clean release image apt-diff

all: build

## build: compile kiln into bin/kiln
build:
	$(GO) build -trimpath -o bin/kiln ./cmd/kiln

## release: static binaries (CGO_ENABLED=0) for every platform in
## RELEASE_PLATFORMS under out/release, with their sha256 in SHA256SUMS
## (check with: cd out/release && sha256sum -c SHA256SUMS)
RELEASE_PLATFORMS ?= linux/amd64 linux/arm64 darwin/arm64 darwin/amd64
release:
	@rm -rf out/release.tmp && mkdir -p out/release.tmp
	@for p in $(RELEASE_PLATFORMS); do \
		os=$${p%%/*}; arch=$${p##*/}; \
		echo "build kiln-$$os-$$arch"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -o out/release.tmp/kiln-$$os-$$arch ./cmd/kiln || exit 1; \
	done
	@cd out/release.tmp && sha256sum kiln-* > SHA256SUMS && cat SHA256SUMS
	@rm -rf out/release && mv out/release.tmp out/release

## image: kiln's own image, built by kiln from image/kiln.yaml around a
## static kiln binary; IMAGE=REF pushes it to REF, without IMAGE it is
## written as an OCI layout to out/kiln (BASE=REF picks another parent)
IMAGE ?=
BASE ?=
image:
	CGO_ENABLED=0 $(GO) build -trimpath -o out/image/kiln ./cmd/kiln
	out/image/kiln build image/kiln.yaml --context . $(if $(BASE),--base-image $(BASE)) $(if $(IMAGE),--image $(IMAGE))

## vet: gofmt and go vet
vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...

## test: every test: unit, differential, fuzz seed corpora and end-to-end
## (the e2e tests need root for debootstrap and podman; kiln itself runs as nobody)
test: vet
	$(GO) test -count=1 -timeout 45m ./...

## unit: the fast tests only (no registry, podman or debootstrap)
unit:
	$(GO) test -count=1 -short ./...

## e2e: the end-to-end tests only
e2e:
	$(GO) test -count=1 -timeout 45m -v -run 'E2E' ./cmd/kiln

## soak: 50 builds through a registry proxy that injects faults (20% of requests)
soak:
	KILN_SOAK=1 $(GO) test -count=1 -timeout 60m -v -run 'Soak' ./cmd/kiln

## fuzz: run every fuzz target for FUZZTIME each (their seed corpora run in make test)
FUZZTIME ?= 1m
FUZZ_TARGETS = pkg/spec:FuzzParse pkg/pep440:FuzzParseVersion pkg/pep440:FuzzParseSpecifierSet \
	pkg/pep508:FuzzParseRequirement pkg/pep508:FuzzParseMarker pkg/wheeltag:FuzzParseWheelFilename \
	pkg/resolve/aptrepo:FuzzParsePackages pkg/resolve/aptrepo:FuzzQuickFields pkg/resolve/aptrepo:FuzzParseRelease pkg/resolve/aptrepo:FuzzParseSourcesList \
	pkg/resolve/pypi:FuzzParseIndexPages pkg/resolve/pypi:FuzzParseMetadata pkg/resolve/pypi:FuzzParseRequirements \
	pkg/resolve/rootfs:FuzzReadTars pkg/layer/deblayer:FuzzWrite \
	pkg/layer/wheelinstall:FuzzInstall pkg/layer/wheelinstall:FuzzInstallWellFormed
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "fuzz $$pkg $$fn for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) -parallel 1 ./$$pkg || exit 1; \
	done

## apt-diff: kiln vs apt-get install on a random list of APT_DIFF_N packages from the parent's
## sources (not a CI gate); the report goes to apt-diff.txt
APT_DIFF_N ?= 12
apt-diff:
	KILN_APT_DIFF_RANDOM=$(APT_DIFF_N) KILN_APT_DIFF_REPORT=$(CURDIR)/apt-diff.txt $(GO) test -count=1 -timeout 60m -v -run 'TestE2EAptDifferential$$' ./cmd/kiln

## demo: build examples/hello with kiln (as nobody), push it to a local
## docker-registry and run it with podman, showing what each step printed
demo: build
	KILN_DEMO=1 $(GO) test -count=1 -timeout 30m -v -run 'TestE2EBuildPushRun' ./cmd/kiln

## bench: kiln vs buildah on the same workloads (as root, ~30 min); Markdown table on stdout
bench:
	$(GO) run ./bench

## deps: install the packages the tests and demo use (Debian, as root)
deps:
	bash scripts/install-deps.sh

## clean: remove build outputs (the cached parent image under .cache/ stays)
clean:
	rm -rf bin out
