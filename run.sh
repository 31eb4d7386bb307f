#!/usr/bin/env bash
# Set everything up on a fresh machine, then start the app or run the tests.
#   bash run.sh app    # dashboard on the bundled Fashion-MNIST GoogLeNet, http://localhost:8501
#   bash run.sh test   # the import contracts, then the whole test suite (installs Chromium and Fashion-MNIST with apt when missing)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

what="${1:-}"
shift || true
venv=.venv
py="$venv/bin/python"

apt_install() {
  # Debian packages, as root or through sudo; otherwise say what to install.
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null; then sudo="sudo"; else
      echo "error: please install these Debian packages (as root): $*" >&2
      exit 1
    fi
  fi
  if ! command -v apt-get >/dev/null; then
    echo "warning: apt-get not found; install $* yourself" >&2
    return 0
  fi
  echo "==> installing Debian packages: $*"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

ensure_venv() {
  # $1: requirements file. Reinstalls only when the file changed since the last install.
  if [ ! -x "$py" ]; then
    # Debian's python3 lacks venv/ensurepip until python3-venv is installed.
    python3 -c "import ensurepip, venv" 2>/dev/null || apt_install python3-venv
    python3 -m venv "$venv"
  fi
  local stamp="$venv/.installed-$(sha256sum "$1" requirements.txt pyproject.toml | sha256sum | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    echo "==> installing Python packages from $1 (first run: torch is large, this takes a few minutes)"
    "$py" -m pip install --quiet --upgrade pip
    "$py" -m pip install --quiet -r "$1"
    "$py" -m pip install --quiet --no-deps -e .
    touch "$stamp"
  fi
}

ensure_apt() {
  # Debian packages the tests need: Chromium for the browser test, Fashion-MNIST for the accuracy test.
  local missing=()
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  [ -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ] || missing+=(dataset-fashion-mnist)
  [ ${#missing[@]} -eq 0 ] && return 0
  apt_install "${missing[@]}"
}

case "$what" in
  app)
    ensure_venv requirements.txt
    exec "$py" -m streamlit run dashboard/serve.py "$@"
    ;;
  test)
    ensure_venv requirements-dev.txt
    ensure_apt
    "$venv/bin/lint-imports" --no-logo  # the import contracts (pyproject.toml, docs/ARCHITECTURE.md)
    exec "$py" -m pytest "$@"
    ;;
  *)
    echo "usage: bash run.sh app | test [extra args]" >&2
    exit 64
    ;;
esac
