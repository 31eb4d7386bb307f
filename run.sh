#!/usr/bin/env bash
# Set everything up on a fresh machine, then start the app or run the tests.
#   bash run.sh app    # dashboard on the bundled Fashion-MNIST GoogLeNet, http://localhost:8501
#   bash run.sh test   # the whole test suite (installs Chromium and Fashion-MNIST with apt when missing)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

what="${1:-}"
shift || true
venv=.venv
py="$venv/bin/python"

ensure_venv() {
  # $1: requirements file. Reinstalls only when the file changed since the last install.
  [ -x "$py" ] || python3 -m venv "$venv"
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
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if command -v apt-get >/dev/null; then
    echo "==> installing Debian packages: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "warning: apt-get not found; install ${missing[*]} yourself or the tests that need them will fail" >&2
  fi
}

case "$what" in
  app)
    ensure_venv requirements.txt
    exec "$py" -m streamlit run dashboard/app.py "$@"
    ;;
  test)
    ensure_venv requirements-dev.txt
    ensure_apt
    exec "$py" -m pytest "$@"
    ;;
  *)
    echo "usage: bash run.sh app | test [extra args]" >&2
    exit 64
    ;;
esac
