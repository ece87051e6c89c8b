# jobq: PGXS build of the extension, plus the runner, tests, demo and bench.
#
#   make               build jobq.so, the extension script and jobq-runner
#   make install       install the extension and /usr/local/bin/jobq-runner
#   make test          every suite on PostgreSQL 15, 17 and 18 (scripts/test.sh)
#   make demo          a private cluster with jobs flowing (Ctrl+C stops it)
#   make bench         benchmarks (QUICK=1 for a smoke run, ONLY=W6 for some workloads,
#                      PG=17 on another PostgreSQL major, see docs/versions.md)
#   make chaos         the long chaos suite (its short mode runs in make test)
#   make deb           Debian packages into build/deb/ (postgresql-NN-jobq, jobq-runner)
#   make format        clang-format every C++ source

EXTENSION   = jobq
EXTVERSION  = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" jobq.control)
MODULE_big  = jobq
SRCS        = $(sort $(wildcard extension/src/*.cpp extension/src/*/*.cpp))
OBJS        = $(SRCS:.cpp=.o)
SQL_PARTS   = $(sort $(wildcard extension/sql/parts/*.sql))
# The base script of each released version (VERSION:COMMIT), rebuilt from
# the parts at its release commit, so that CREATE EXTENSION jobq VERSION
# '0.1.0' works: test/t/extension_upgrade.pl installs it and updates it.
# Left out when the git history is not at hand (a source tarball).
RELEASES    = 0.1.0:6ec4355
release_commit = $(word 2,$(subst :, ,$(filter $(1):%,$(RELEASES))))
RELEASED_SQL = $(foreach r,$(RELEASES),$(if $(shell git cat-file -e '$(lastword $(subst :, ,$(r)))^{commit}' 2>/dev/null && echo y),extension/sql/jobq--$(firstword $(subst :, ,$(r))).sql))
DATA_built  = extension/sql/jobq--$(EXTVERSION).sql $(RELEASED_SQL)
# Upgrade scripts jobq--A--B.sql: every SQL change ships one (docs/contributing.md).
DATA        = $(wildcard extension/sql/jobq--*--*.sql)

PG_CONFIG  ?= pg_config
# Supported majors (extension/src/pg/compat.h holds their differences; see
# docs/versions.md). Anything else stops here, before compiling.
PG_MAJOR   := $(shell $(PG_CONFIG) --version | sed -n 's/^PostgreSQL \([0-9]*\).*/\1/p')
ifeq ($(filter $(PG_MAJOR),15 16 17 18),)
$(error jobq builds against PostgreSQL 15, 16, 17 and 18, not "$(shell $(PG_CONFIG) --version)" ($(PG_CONFIG)))
endif
PG_CPPFLAGS = -isystem $(shell $(PG_CONFIG) --includedir-server) -I$(CURDIR)/extension/src \
              -DJOBQ_VERSION='"$(EXTVERSION)"'
# -MMD -MP: objects are rebuilt when a header they include changes (a stale
# object compiled against an old struct layout crashes the server).
PG_CXXFLAGS = -std=c++17 -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -fno-omit-frame-pointer -MMD -MP
SHLIB_LINK  = -lfmt -lstdc++

# The bitcode step compiles C++ without our flags and fails on C++17.
override with_llvm = no

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

-include $(OBJS:.o=.d)

extension/sql/jobq--$(EXTVERSION).sql: $(SQL_PARTS) jobq.control
	cat $(SQL_PARTS) > $@

# Rebuilt at every make (from git, so cheap): a file left by an older build
# under the same name must never be installed as the release.
$(RELEASED_SQL): extension/sql/jobq--%.sql: FORCE
	@commit=$(call release_commit,$*); \
	for part in $$(git ls-tree --name-only $$commit extension/sql/parts/ | LC_ALL=C sort); do \
	  git show $$commit:$$part || exit 1; \
	done > $@.tmp && if cmp -s $@.tmp $@; then rm $@.tmp; else mv $@.tmp $@; fi

FORCE:

RUNNER_BUILD = runner/build
PREFIX      ?= /usr/local

.PHONY: runner install-runner test demo bench chaos format FORCE

all: runner

runner:
	@if [ -f runner/CMakeLists.txt ]; then \
	  cmake -S runner -B $(RUNNER_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null && \
	  cmake --build $(RUNNER_BUILD) -j2; \
	fi

install: install-runner

install-runner: runner
	@if [ -x $(RUNNER_BUILD)/jobq-runner ]; then \
	  install -d $(DESTDIR)$(PREFIX)/bin && \
	  install -m 755 $(RUNNER_BUILD)/jobq-runner $(DESTDIR)$(PREFIX)/bin/jobq-runner; \
	fi

test:
	bash scripts/test.sh

demo:
	bash scripts/demo.sh

bench:
	$(if $(ONLY),ONLY='$(ONLY)') bash bench/run.sh $(if $(QUICK),--quick) $(if $(SETUP),--install) $(if $(PG),--pg $(PG))

chaos:
	bash test/chaos/run.sh --long

.PHONY: deb
deb:
	bash scripts/build-deb.sh

format:
	clang-format -i $(SRCS) $(wildcard extension/src/*.h extension/src/*/*.h) \
	  $(wildcard runner/src/*.cpp runner/src/*.h runner/src/*/*.cpp runner/src/*/*.h runner/tests/unit/*.cpp runner/bench/*.cpp) $(wildcard test/unit/*.cpp)

clean: clean-extras
clean-extras:
	rm -rf $(RUNNER_BUILD) test/unit/build $(OBJS:.o=.d)
