#!/usr/bin/env bash
# Installs the TimescaleDB extension into the PostgreSQL server the local stack runs (the
# newest /usr/lib/postgresql/N, as services/stack/postgres.py picks it). `make install`
# (so `make test`, `make demo` and CI) runs it; it does something at most once per machine:
#
# - this version's library and SQL script are in the server's folders: nothing to do;
# - ../shared/vendor/timescaledb-$VERSION.tar.gz is there (our machines, CI; no registry
#   we reach ships TimescaleDB): check its sha256, build it in a temporary folder outside
#   the work tree (~100 s on 2 cores), install it, remove the build;
# - otherwise: print how to install it from Timescale's own package repository and exit 0;
#   the stack then runs plain PostgreSQL, which the project supports as well.
#
# The files go into the server's shared folders, so every cluster of that major version on
# the machine can then *load* TimescaleDB; a cluster that does not preload it (someone
# else's, or the stack's plain-mode cluster) keeps running plain PostgreSQL.
#
# CITYSTREAM_TIMESCALEDB_ARCHIVE names another copy of the archive (same checksum).
set -Eeuo pipefail

VERSION=2.28.3
SHA256=ec2f7de0ba53a473c01e0a57e09053898c6b1f7487228caff0f1d31c8cb2dedb

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ARCHIVE=${CITYSTREAM_TIMESCALEDB_ARCHIVE:-$ROOT/../shared/vendor/timescaledb-$VERSION.tar.gz}

say() { printf 'timescaledb: %s\n' "$*"; }

server=$(ls -d /usr/lib/postgresql/*/bin/postgres 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$server" ]; then
    say "no PostgreSQL server in /usr/lib/postgresql (make system-deps installs it); skipped"
    exit 0
fi
bindir=$(dirname "$server")
major=$(basename "$(dirname "$bindir")")
# Debian's layout; pg_config may be absent until the server headers are installed.
libdir=/usr/lib/postgresql/$major/lib
extdir=/usr/share/postgresql/$major/extension

installed() { [ -f "$libdir/timescaledb-$VERSION.so" ] && [ -f "$extdir/timescaledb--$VERSION.sql" ]; }

if installed; then
    say "$VERSION already installed for PostgreSQL $major ($libdir)"
    exit 0
fi
if [ -f "$extdir/timescaledb.control" ]; then
    other=$(sed -n "s/^default_version *= *'\(.*\)'.*/\1/p" "$extdir/timescaledb.control")
    say "TimescaleDB ${other:-?} is installed for PostgreSQL $major (not $VERSION); left as it is"
    exit 0
fi

if [ ! -f "$ARCHIVE" ]; then
    cat <<EOF
timescaledb: not installed, and $ARCHIVE is not here:
  the local stack runs plain PostgreSQL (everything works; *.timescale.sql migrations stay pending).
  To run TimescaleDB, install it from Timescale's package repository (their guide
  "Install TimescaleDB on Linux", Debian/Ubuntu), pinned to the line production runs:
    echo "deb [signed-by=/usr/share/keyrings/timescaledb.gpg] https://packagecloud.io/timescale/timescaledb/debian/ \$(lsb_release -cs) main" \\
      | sudo tee /etc/apt/sources.list.d/timescaledb.list
    curl -fsSL https://packagecloud.io/timescale/timescaledb/gpgkey | sudo gpg --dearmor -o /usr/share/keyrings/timescaledb.gpg
    sudo apt-get update
    sudo apt-get install timescaledb-2-postgresql-$major='$VERSION*' timescaledb-2-loader-postgresql-$major='$VERSION*'
  then \`citystream stack up\` restarts the stack's cluster with timescaledb preloaded.
EOF
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    say "building $VERSION needs root (apt-get, and writing into $libdir); run:"
    say "  sudo $0"
    say "until then the local stack runs plain PostgreSQL"
    exit 0
fi

actual=$(sha256sum "$ARCHIVE" | cut -d' ' -f1)
if [ "$actual" != "$SHA256" ]; then
    say "refusing $ARCHIVE: sha256 $actual, expected $SHA256" >&2
    exit 1
fi

# One build at a time on the machine (two work trees may run `make install` together).
exec 9>"${TMPDIR:-/tmp}/citystream-timescaledb.lock"
flock 9
if installed; then
    say "$VERSION installed meanwhile by another build"
    exit 0
fi

# The server headers must be those of the *installed* server's exact version: Debian's
# candidate may be newer, and installing it must not upgrade the running server.
packages=()
if server_version=$(dpkg-query -W -f='${Version}' "postgresql-$major" 2>/dev/null); then
    headers=$(dpkg-query -W -f='${Status} ${Version}' "postgresql-server-dev-$major" 2>/dev/null || true)
    [ "$headers" = "install ok installed $server_version" ] ||
        packages+=("postgresql-server-dev-$major=$server_version")
fi
command -v cmake >/dev/null || packages+=(cmake)
if [ ${#packages[@]} -gt 0 ]; then
    say "installing Debian packages: ${packages[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi
pg_config=$bindir/pg_config
[ -x "$pg_config" ] || { say "$pg_config not found: install postgresql-server-dev-$major" >&2; exit 1; }

build=$(mktemp -d "${TMPDIR:-/tmp}/citystream-timescaledb-$VERSION.XXXXXX")
trap 'rm -rf "$build"' EXIT
log=$build/build.log
fail() {
    tail -n 40 "$log" >&2
    say "build failed ($1); the log above is the end of $log" >&2
    trap - EXIT
    exit 1
}

started=$SECONDS
say "building $VERSION for PostgreSQL $major in $build (about 100 s on 2 cores)"
tar -xzf "$ARCHIVE" -C "$build"
# No regression/TAP test targets (they need a PostgreSQL source tree). No telemetry code at
# all: our machines reach no network but package registries, and nobody is asked.
cmake -S "$build/timescaledb-$VERSION" -B "$build/build" \
    -DPG_CONFIG="$pg_config" -DCMAKE_BUILD_TYPE=Release \
    -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF -DUSE_TELEMETRY=OFF >"$log" 2>&1 || fail configure
make -C "$build/build" -j "$(nproc)" >>"$log" 2>&1 || fail make
make -C "$build/build" install >>"$log" 2>&1 || fail install
installed || fail "files missing after install"
say "installed $VERSION in $((SECONDS - started)) s: $(wc -l <"$build/build/install_manifest.txt") files in $libdir and $extdir"
