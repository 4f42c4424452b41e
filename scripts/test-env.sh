#!/bin/sh
# test-env: prepare this machine for the test suite (run by `npm test`'s pretest, as root, Debian bookworm).
#
# - Debian packages the tests use: chromium, redis-tools, redis-server, socat, nginx,
#   tigervnc-standalone-server, tigervnc-tools (vncpasswd), prosody, prometheus (for promtool), systemd
#   (systemd-analyze), websockify (its live --help)
#   (+ podman, runc, debootstrap when needed). Services are not started (the tests spawn their own).
# - A container engine with a Docker-compatible API: a real Docker engine if one answers, otherwise
#   podman's API service on unix:///run/podman/podman.sock (see docs/testing.md).
# - Local test images, built without a registry from a cached Debian minbase rootfs (IMAGES below).
# - Removes containers left behind by crashed test runs.
#
# Idempotent: a warm run does no apt or image work. Exports nothing; test/helpers/containers.ts picks the
# same engine (DOCKER_HOST if set, else /var/run/docker.sock if present, else the podman socket).
set -eu
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH

HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${GANGWAY_TEST_CACHE:-/var/cache/gangway-test}
PODMAN_SOCK=/run/podman/podman.sock
PODMAN_CONF=/etc/containers/containers.conf.d/50-no-docker-engine.conf
BASE_TAR=$CACHE/bookworm-minbase.tar
PID_LABEL=gangway.test.pid # set by test/helpers/containers.ts: the test process owning a container
WORK=
PROC_MOUNTED=
FAILED_CLEANLY=

say() { printf 'test-env: %s\n' "$*"; }
die() {
  printf 'test-env: error: %s\n' "$*" >&2
  FAILED_CLEANLY=1
  exit 1
}
on_exit() {
  rc=$?
  if [ -n "$PROC_MOUNTED" ]; then umount "$PROC_MOUNTED" 2>/dev/null || true; fi
  if [ -n "$WORK" ]; then rm -rf "$WORK"; fi
  if [ "$rc" -ne 0 ] && [ -z "$FAILED_CLEANLY" ]; then
    printf 'test-env: error: an unexpected step failed (exit %s)\n' "$rc" >&2
  fi
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

[ "$(id -u)" = 0 ] || die "must run as root (it installs Debian packages and builds images)"

# --- engine detection ----------------------------------------------------------------------------------

# api_ping URL: does a Docker-compatible API answer _ping at unix:///path or tcp://host:port?
api_ping() {
  case $1 in
    unix://*) curl -fsS --max-time 3 --unix-socket "${1#unix://}" http://d/_ping >/dev/null 2>&1 ;;
    tcp://*) curl -fsS --max-time 3 "http://${1#tcp://}/_ping" >/dev/null 2>&1 ||
      { command -v docker >/dev/null && docker version >/dev/null 2>&1; } ;;
    *) command -v docker >/dev/null && docker version >/dev/null 2>&1 ;;
  esac
}

command -v curl >/dev/null || die "curl is needed (apt-get install curl)"
ENGINE=podman
if [ -n "${DOCKER_HOST:-}" ] && [ "$DOCKER_HOST" != "unix://$PODMAN_SOCK" ]; then
  api_ping "$DOCKER_HOST" || die "DOCKER_HOST=$DOCKER_HOST does not answer; start that engine or unset DOCKER_HOST"
  ENGINE=docker
elif [ -z "${DOCKER_HOST:-}" ] && [ -S /var/run/docker.sock ]; then
  # the tests would use this socket too, so a dead one must not be papered over with podman
  api_ping unix:///var/run/docker.sock ||
    die "/var/run/docker.sock does not answer; start Docker, or set DOCKER_HOST=unix://$PODMAN_SOCK to use podman"
  ENGINE=docker
fi
mkdir -p "$CACHE"
# one run at a time (two `npm test` at once must not both build an image); fd 9 is closed for the service
exec 9>"$CACHE/lock"
flock -w 900 9 || die "another test-env run holds $CACHE/lock for more than 15 min"

# --- Debian packages -----------------------------------------------------------------------------------

# need PACKAGE COMMAND: queue PACKAGE for installation unless COMMAND exists
MISSING=
need() { command -v "$2" >/dev/null 2>&1 || MISSING="$MISSING $1"; }
need chromium chromium
need redis-tools redis-cli
need redis-server redis-server
need postgresql-client psql
need socat socat
need nginx nginx
need tigervnc-standalone-server Xvnc
need tigervnc-tools vncpasswd # VNC Authentication password files (test/helpers/xvnc.ts)
need prosody prosody
need prometheus promtool # `promtool check metrics` (test/cli/metrics.test.ts); its service is not started
need debootstrap debootstrap
need systemd systemd-analyze
need websockify websockify
if [ "$ENGINE" = podman ]; then
  need podman podman
  need runc runc
fi
if [ -n "$MISSING" ]; then
  say "installing${MISSING} (apt, first run only)…"
  APT="apt-get -qq -o DPkg::Lock::Timeout=300 -o Dpkg::Use-Pty=0"
  export DEBIAN_FRONTEND=noninteractive
  # Packages must not start their services (prosody would listen on all interfaces): the tests spawn
  # their own instances on loopback. A policy-rc.d we create is removed again.
  POLICY=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    POLICY=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' >"$POLICY" && chmod 755 "$POLICY"
  fi
  status=0
  # shellcheck disable=SC2086 # word splitting of the package list is intended
  { $APT update && $APT install -y $MISSING; } >"$CACHE/apt.log" 2>&1 9>&- || status=$?
  [ -z "$POLICY" ] || rm -f "$POLICY"
  [ "$status" -eq 0 ] || die "apt-get install${MISSING} failed; see $CACHE/apt.log"
fi

# --- container engine ----------------------------------------------------------------------------------

if [ "$ENGINE" = podman ]; then
  CLI=podman
  mkdir -p "$(dirname "$PODMAN_CONF")"
  CONF=$(
    cat <<'EOF'
# Written by gangway scripts/test-env.sh: podman as a Docker API for testcontainers (docs/testing.md).
[containers]
# the sandbox's hard RLIMIT_NOFILE is low: podman's default nofile=1048576 makes setrlimit fail with EPERM
default_ulimits = []

[engine]
# crun fails with "cgroups in hybrid mode not supported"; runc works
runtime = "runc"
# no systemd as PID 1
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
  )
  if [ "$(cat "$PODMAN_CONF" 2>/dev/null)" != "$CONF" ]; then
    printf '%s\n' "$CONF" >"$PODMAN_CONF"
  fi
  # A service started by an older version of this script may sit in a deleted directory (see below):
  # it answers pings but cannot start containers, so it is replaced.
  SERVICE_PID=$(cat "$(dirname "$PODMAN_SOCK")/podman-service.pid" 2>/dev/null || true)
  if [ -n "$SERVICE_PID" ] && readlink "/proc/$SERVICE_PID/cwd" 2>/dev/null | grep -q ' (deleted)$'; then
    say "restarting podman system service (its working directory was deleted)…"
    kill "$SERVICE_PID" 2>/dev/null || true
    i=0
    while kill -0 "$SERVICE_PID" 2>/dev/null && [ $i -le 100 ]; do i=$((i + 1)); sleep 0.1; done
  fi
  if ! api_ping "unix://$PODMAN_SOCK"; then
    say "starting podman system service on unix://$PODMAN_SOCK…"
    mkdir -p "$(dirname "$PODMAN_SOCK")"
    rm -f "$PODMAN_SOCK"
    # The service outlives this script: it must hold none of our caller's descriptors (a pipe held open
    # would keep `npm test | tee` waiting), so every fd above 2 is closed before podman starts. It must not
    # keep our caller's directory either: once that is deleted (a temporary clone), conmon fails to start
    # containers ("Failed to get working directory", HTTP 500 "write child: broken pipe").
    setsid bash -c 'cd / && echo $$ >"$1"; for fd in /proc/$$/fd/*; do fd=${fd##*/}
        [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done; exec podman system service --time=0 "$2"' \
      sh "$(dirname "$PODMAN_SOCK")/podman-service.pid" "unix://$PODMAN_SOCK" \
      >/var/log/podman-service.log 2>&1 </dev/null 9>&- &
    i=0
    until api_ping "unix://$PODMAN_SOCK"; do
      i=$((i + 1))
      [ $i -le 100 ] || die "podman system service did not answer within 10 s; see /var/log/podman-service.log"
      sleep 0.1
    done
  fi
else
  CLI=docker
  command -v docker >/dev/null || die "a Docker engine answers but the docker CLI is missing (it imports images)"
  say "using the Docker engine at ${DOCKER_HOST:-unix:///var/run/docker.sock}"
fi

# --- leftovers of crashed runs -------------------------------------------------------------------------

# Without ryuk nothing reaps the containers of a run that crashed. Keep those whose test process is alive
# (another run going on right now), remove the rest.
for id in $($CLI ps -aq --filter label=org.testcontainers=true 2>/dev/null); do
  owner=$($CLI inspect --format "{{index .Config.Labels \"$PID_LABEL\"}}" "$id" 2>/dev/null || true)
  case $owner in '' | *[!0-9]*) ;; *) kill -0 "$owner" 2>/dev/null && continue ;; esac
  say "removing leftover test container $id"
  $CLI rm -f "$id" >/dev/null 2>&1 || die "could not remove leftover container $id"
done

# --- images --------------------------------------------------------------------------------------------

# find_mirror: the Debian mirror apt uses here, into MIRROR (no host name is written into the repo)
find_mirror() {
  MIRROR=${GANGWAY_DEBIAN_MIRROR:-}
  [ -n "$MIRROR" ] || MIRROR=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$MIRROR" ] || MIRROR=$(awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }' /etc/apt/sources.list 2>/dev/null || true)
  [ -n "$MIRROR" ] || die "no Debian mirror in /etc/apt/sources.list.d/debian.sources; set GANGWAY_DEBIAN_MIRROR"
}

# Debian bookworm minbase rootfs, made once and kept as a tarball for every image.
ensure_base() {
  [ -s "$BASE_TAR" ] && return
  say "debootstrap bookworm minbase into $BASE_TAR (first run only, ~30 s)…"
  b=$WORK/base
  find_mirror
  debootstrap --variant=minbase bookworm "$b" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 ||
    die "debootstrap failed; see $CACHE/debootstrap.log"
  rm -rf "$b"/var/cache/apt/archives/*.deb "$b"/var/lib/apt/lists/*
  tar -C "$b" --numeric-owner -cf "$BASE_TAR.tmp" . || die "could not write $BASE_TAR"
  mv "$BASE_TAR.tmp" "$BASE_TAR"
  rm -rf "$b"
}

# ensure_image NAME TAG "PACKAGES" [SETTING...]
# Builds localhost/gangway-test-NAME:TAG unless present: the base rootfs + PACKAGES (apt, no recommends),
# scripts/images/NAME-entrypoint.sh as the entrypoint, scripts/images/NAME-setup.sh (optional) run in
# the chroot after the install, SETTINGs in Dockerfile form ('USER redis', 'EXPOSE 6379', 'ENV K=V').
ensure_image() {
  name=$1 tag=$2 packages=$3
  shift 3
  image=localhost/gangway-test-$name:$tag
  $CLI image inspect "$image" >/dev/null 2>&1 && return
  entry=$HERE/images/$name-entrypoint.sh
  [ -f "$entry" ] || die "missing $entry"
  [ -n "$WORK" ] || WORK=$(mktemp -d /var/tmp/gangway-test-env.XXXXXX)
  ensure_base
  say "building image $image (first run only, ~10 s)…"
  r=$WORK/$name
  log=$CACHE/build-$name.log
  mkdir -p "$r"
  tar -C "$r" -xf "$BASE_TAR" || die "could not unpack $BASE_TAR"
  cp /etc/resolv.conf "$r/etc/resolv.conf"
  printf '#!/bin/sh\nexit 101\n' >"$r/usr/sbin/policy-rc.d" # packages must not start services
  chmod 755 "$r/usr/sbin/policy-rc.d"
  mount -t proc proc "$r/proc" || die "could not mount /proc in the image rootfs"
  PROC_MOUNTED=$r/proc
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 \
    ${http_proxy:+http_proxy=$http_proxy} chroot "$r" sh -c \
    "apt-get -qq update && apt-get -qq install -y --no-install-recommends $packages" >"$log" 2>&1 ||
    die "apt-get install $packages in the image rootfs failed; see $log"
  if [ -f "$HERE/images/$name-setup.sh" ]; then
    cp "$HERE/images/$name-setup.sh" "$r/tmp/setup.sh"
    chroot "$r" /bin/sh /tmp/setup.sh >>"$log" 2>&1 || die "scripts/images/$name-setup.sh failed; see $log"
  fi
  umount "$r/proc"
  PROC_MOUNTED=
  install -m 755 "$entry" "$r/usr/local/bin/entrypoint.sh"
  # slim: apt state and caches, docs, man pages, translations, the mirror's name, build leftovers
  rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/*.bin "$r"/var/cache/apt/archives/*.deb \
    "$r"/var/cache/debconf/*-old "$r"/var/lib/dpkg/*-old "$r"/var/log/* "$r"/tmp/* \
    "$r"/usr/share/doc/* "$r"/usr/share/man/* "$r"/usr/share/info/* \
    "$r/etc/apt/sources.list" "$r/usr/sbin/policy-rc.d"
  if [ -d "$r/usr/share/locale" ]; then
    find "$r/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
  fi
  : >"$r/etc/resolv.conf"
  # podman takes KEY=VALUE, docker takes Dockerfile form
  set -- "$@" 'ENTRYPOINT ["/usr/local/bin/entrypoint.sh"]'
  for s in "$@"; do
    shift
    [ "$CLI" = podman ] && s=$(printf '%s' "$s" | sed 's/ /=/')
    set -- "$@" --change "$s"
  done
  tar -C "$r" --numeric-owner -cf - . | $CLI import "$@" - "$image" >>"$log" 2>&1 ||
    die "$CLI import of $image failed; see $log"
  rm -rf "$r"
}

# The images the tests use (one line each; see ensure_image above).
ensure_image redis 7 redis-server 'USER redis' 'WORKDIR /var/lib/redis' 'EXPOSE 6379'
ensure_image postgres 15 postgresql-15 'USER postgres' 'ENV PGDATA=/var/lib/postgresql/data' \
  'ENV LANG=C.UTF-8' 'EXPOSE 5432' 'STOPSIGNAL SIGINT'

say "ready ($ENGINE)"
