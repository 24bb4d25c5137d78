#!/usr/bin/env bash
# Install everything ktg needs on a fresh Debian/Ubuntu machine: Graphviz (apt), a project
# virtual environment .venv (with python3-venv from apt when `python3 -m venv` can't make one),
# and in it PyTorch, ktg (editable) and its dev tools at the versions pinned in constraints.txt.
# In an active virtualenv or conda env (other than conda's base) it installs there instead.
# Safe to run again: it skips what is already there, in about a second and without the network.
#   bash scripts/install.sh
#   PYTHON=python3.12 bash scripts/install.sh     # the Python that creates .venv
#   bash scripts/install.sh --fashion-mnist       # also Fashion-MNIST, Debian's
#                                                 # dataset-fashion-mnist package (31 MB, apt)
#   bash scripts/install.sh --browser             # also Debian's chromium and chromium-driver
#                                                 # (apt), for the tests of ktg report's pages
# Details: docs/install.md
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
CONSTRAINTS=constraints.txt
VERSION='import sys; print("%d.%d" % sys.version_info[:2])'

die() {
    echo "install.sh: error: $*" >&2
    exit 1
}

# apt_install WHY PACKAGE...: install Debian packages, through sudo unless we are root.
APT_UPDATED=""
apt_install() {
    local why=$1
    shift
    command -v apt-get >/dev/null 2>&1 ||
        die "$why, and this system has no apt-get: install $* with your package manager," \
            "then run this script again"
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 ||
            die "$why, and installing $* needs root: run 'apt-get install $*' as root (or" \
                "install sudo), then run this script again"
        sudo=sudo
    fi
    echo "== installing $* with apt: $why"
    if [ -z "$APT_UPDATED" ]; then
        $sudo apt-get update -qq
        APT_UPDATED=1
    fi
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

FASHION=""
BROWSER=""
for arg in "$@"; do
    case $arg in
    --fashion-mnist) FASHION=1 ;;
    --browser) BROWSER=1 ;;
    *) die "unknown option '$arg' (the options are --fashion-mnist and --browser)" ;;
    esac
done

python_ok() { # python_ok PYTHON: is it Python 3.10 or newer?
    "$1" -c 'import sys; sys.exit(sys.version_info < (3, 10))' >/dev/null 2>&1
}

# A usable project venv: its Python runs, is 3.10+, and has pip.
venv_ok() {
    [ -x .venv/bin/python ] && python_ok .venv/bin/python &&
        .venv/bin/python -m pip --version >/dev/null 2>&1
}

# Create (or reuse) the project venv .venv with $PY.
ensure_project_venv() {
    if venv_ok; then
        echo "== using the project venv .venv ($(.venv/bin/python -V))"
        return
    fi
    if [ -e .venv ] || [ -L .venv ]; then
        [ -f .venv/pyvenv.cfg ] ||
            die ".venv exists but is not a virtual environment: move it away, then run this" \
                "script again"
        echo "== .venv is unusable (no working Python 3.10+ with pip in it): recreating it"
        rm -rf .venv
    fi
    if ! command -v "$PY" >/dev/null 2>&1; then
        [ -z "${PYTHON:-}" ] || die "PYTHON=$PY: no such command"
        apt_install "$PY is missing" python3 python3-venv
    fi
    python_ok "$PY" ||
        die "ktg needs Python 3.10 or newer and $PY is $("$PY" -V 2>&1): install a newer one," \
            "then run: PYTHON=/path/to/python3.X bash scripts/install.sh"
    if ! "$PY" -c 'import venv, ensurepip' >/dev/null 2>&1; then
        # Debian and Ubuntu ship venv's ensurepip in a package of its own.
        if [ "$("$PY" -c 'import sys; print(sys.base_prefix)')" = /usr ]; then
            local ver default pkg=python3-venv
            ver=$("$PY" -c "$VERSION")
            default=$(/usr/bin/python3 -c "$VERSION" 2>/dev/null || true)
            if [ "$ver" != "$default" ]; then
                pkg=python$ver-venv # not the system's default python3
            fi
            apt_install "'$PY -m venv' needs it" "$pkg"
        fi
        "$PY" -c 'import venv, ensurepip' >/dev/null 2>&1 ||
            die "$PY cannot create virtual environments (its venv/ensurepip modules are" \
                "missing): install them (Debian/Ubuntu: apt-get install python3-venv), or point" \
                "PYTHON= at another Python 3.10+, or create and activate an environment yourself" \
                "(docs/install.md), then run this script again"
    fi
    echo "== creating the project venv .venv ($("$PY" -V))"
    if ! "$PY" -m venv .venv; then
        rm -rf .venv
        die "'$PY -m venv .venv' failed (see above)"
    fi
}

# Prints why the environment needs pip, or nothing (exit 0) when it already has every version
# pinned in constraints.txt and ktg installed editable from this checkout, newer than
# pyproject.toml. (-I: leave out the current directory, whose ktg_dsl.egg-info is not the
# installed ktg.)
needs_pip() {
    "$KTG_PY" -I - "$CONSTRAINTS" <<'EOF'
import importlib.metadata as md, json, os, re, sys
from urllib.parse import unquote, urlparse

def canon(name):
    return re.sub(r"[-_.]+", "-", name).lower()

have = {}
for d in md.distributions():
    if d.metadata["Name"]:
        have.setdefault(canon(d.metadata["Name"]), d)
off = []
for line in open(sys.argv[1]):
    line = line.split("#", 1)[0].strip()
    if line:
        name, _, version = line.partition("==")
        d = have.get(canon(name))
        if d is None or d.version != version.strip():
            off.append(line)
if off:
    print(f"{len(off)} of the pinned packages missing or at other versions, e.g. {off[0]}")
    sys.exit(1)
ktg = have.get("ktg-dsl")
if ktg is None:
    print("ktg is not installed yet")
    sys.exit(1)
url = json.loads(ktg.read_text("direct_url.json") or "{}")
here = os.path.realpath(os.getcwd())
if not url.get("dir_info", {}).get("editable") or \
        os.path.realpath(unquote(urlparse(url.get("url", "")).path)) != here:
    print("ktg is installed, but not editable from this checkout")
    sys.exit(1)
meta = [ktg.locate_file(f) for f in ktg.files or [] if f.name == "METADATA"]
if not meta or os.path.getmtime("pyproject.toml") > os.path.getmtime(str(meta[0])):
    print("pyproject.toml changed since ktg was installed")
    sys.exit(1)
EOF
}

# 1. Graphviz, for `ktg render`.
if ! command -v dot >/dev/null 2>&1; then
    apt_install "Graphviz's dot (for ktg render) is missing" graphviz
fi

# 2. The Python environment: an active one, or the project venv .venv.
# shellcheck source=scripts/env.sh
source scripts/env.sh
if [ "$KTG_ENV_KIND" = project ]; then
    ensure_project_venv
else
    env_name="virtualenv $KTG_ENV"
    if [ "$KTG_ENV_KIND" = conda ]; then env_name="conda env $KTG_ENV"; fi
    [ -x "$KTG_PY" ] ||
        die "the active $env_name has no bin/python: fix it (in a conda env: conda install" \
            "python), or deactivate it to use the project venv .venv, then run this script again"
    python_ok "$KTG_PY" ||
        die "the active $env_name has $("$KTG_PY" -V 2>&1) and ktg needs Python 3.10 or newer:" \
            "deactivate it to use the project venv .venv, then run this script again"
    echo "== installing into the active $env_name ($("$KTG_PY" -V)), not into .venv"
fi

# 3. PyTorch, ktg and its dev tools, at the pinned versions.
if reason=$(needs_pip); then
    echo "== PyTorch, ktg and its dev tools: already installed at the pinned versions"
else
    echo "== installing PyTorch, ktg (editable) and its dev tools with pip, pinned by" \
        "$CONSTRAINTS ($reason; the first time takes a few minutes and about 6 GB)"
    "$KTG_PY" -m pip install -q -c "$CONSTRAINTS" -e '.[dev,export]'
fi

# 4. With --fashion-mnist: the dataset, where ktg looks for it without a data.root.
if [ -n "$FASHION" ]; then
    if [ -d /usr/share/datasets/fashion-mnist ]; then
        echo "== Fashion-MNIST: already in /usr/share/datasets/fashion-mnist"
    else
        command -v apt-get >/dev/null 2>&1 ||
            die "--fashion-mnist installs Debian's dataset-fashion-mnist package, and this" \
                "system has no apt-get: set 'download: true' in a spec's data section instead" \
                "(docs/install.md)"
        apt_install "--fashion-mnist asks for it" dataset-fashion-mnist
    fi
fi

# 5. With --browser: a headless Chromium and its WebDriver, for the tests that load ktg
# report's pages in a real browser (tests/test_report_browser.py; they skip without them).
if [ -n "$BROWSER" ]; then
    if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
        echo "== chromium and chromedriver: already installed"
    else
        apt_install "--browser asks for them" chromium chromium-driver
    fi
fi

version=$("$KTG_ENV/bin/ktg" --version) ||
    die "ktg is installed in $KTG_ENV but does not run (see above): '$KTG_PY -m pip check' may" \
        "say why; to start over, remove .venv (or deactivate your env) and run this script again"
echo "== ready: $version in $KTG_ENV, $(dot -V 2>&1)"
if [ "$KTG_ENV_KIND" = project ]; then
    echo "   run ktg as .venv/bin/ktg (or 'source .venv/bin/activate', then ktg)"
fi
