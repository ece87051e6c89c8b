# jobq: PGXS build of the extension, plus the runner, tests, demo and bench.
#
#   make               build jobq.so, the extension script and jobq-runner
#   make install       install the extension and /usr/local/bin/jobq-runner
#   make test          every suite (pg_regress, isolation, TAP, unit, runner)
#   make demo          a private cluster with jobs flowing (Ctrl+C stops it)
#   make bench         benchmarks (QUICK=1 for a smoke run, ONLY=W6 for some workloads)
#   make chaos         the long chaos suite (its short mode runs in make test)
#   make deb           Debian packages into build/deb/ (postgresql-NN-jobq, jobq-runner)
#   make format        clang-format every C++ source

EXTENSION   = jobq
EXTVERSION  = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" jobq.control)
MODULE_big  = jobq
SRCS        = $(sort $(wildcard extension/src/*/*.cpp))
OBJS        = $(SRCS:.cpp=.o)
SQL_PARTS   = $(sort $(wildcard extension/sql/parts/*.sql))
DATA_built  = extension/sql/jobq--$(EXTVERSION).sql
DATA        = $(filter-out $(DATA_built),$(wildcard extension/sql/jobq--*--*.sql))

PG_CONFIG  ?= pg_config
PG_CPPFLAGS = -isystem $(shell $(PG_CONFIG) --includedir-server) -I$(CURDIR)/extension/src
# -MMD -MP: objects are rebuilt when a header they include changes (a stale
# object compiled against an old struct layout crashes the server).
PG_CXXFLAGS = -std=c++17 -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -fno-omit-frame-pointer -MMD -MP
SHLIB_LINK  = -lfmt -lstdc++

# The bitcode step compiles C++ without our flags and fails on C++17.
override with_llvm = no

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

-include $(OBJS:.o=.d)

$(DATA_built): $(SQL_PARTS) jobq.control
	cat $(SQL_PARTS) > $@

RUNNER_BUILD = runner/build
PREFIX      ?= /usr/local

.PHONY: runner install-runner test demo bench chaos format

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
	$(if $(ONLY),ONLY='$(ONLY)') bash bench/run.sh $(if $(QUICK),--quick) $(if $(SETUP),--install)

chaos:
	bash test/chaos/run.sh --long

.PHONY: deb
deb:
	bash scripts/build-deb.sh

format:
	clang-format -i $(SRCS) $(wildcard extension/src/*/*.h) \
	  $(wildcard runner/src/*.cpp runner/src/*.h runner/tests/unit/*.cpp) $(wildcard test/unit/*.cpp)

clean: clean-extras
clean-extras:
	rm -rf $(RUNNER_BUILD) test/unit/build $(OBJS:.o=.d)
