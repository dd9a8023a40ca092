# Sourced by the ensure-*.sh scripts: install Debian packages as root, or through sudo.
# Usage: apt_install TAG WHAT PACKAGE...   (TAG prefixes messages; WHAT says what is missing)

apt_install() {
  local tag=$1 what=$2
  shift 2
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
      sudo=(sudo)
    else
      echo "$tag: $what is missing and this user is not root and has no sudo; as root run: apt-get update && apt-get install -y --no-install-recommends $*" >&2
      exit 1
    fi
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "$tag: $what is missing and apt-get is not available; install the Debian packages '$*' (or their equivalent) by hand" >&2
    exit 1
  fi
  echo "$tag: $what missing; running: ${sudo[*]:+${sudo[*]} }apt-get update && apt-get install -y --no-install-recommends $*"
  "${sudo[@]}" apt-get update
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
  SUDO=("${sudo[@]}")
}
