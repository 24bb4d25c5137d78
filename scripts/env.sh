# Sourced by scripts/install.sh and .ci/run (not run on its own): decides which Python
# environment ktg is installed into, and sets
#   KTG_ENV_KIND  project | venv | conda
#   KTG_ENV       the environment's directory: ".venv" (this repository's) for "project"
#   KTG_PY        its Python: "$KTG_ENV/bin/python"
# The rule: an active virtualenv ($VIRTUAL_ENV) wins, then an active conda env ($CONDA_PREFIX)
# other than conda's base env; otherwise the project venv .venv in the repository root.
# The caller must be in the repository root.

ktg_env_select() {
    KTG_ENV_KIND=project
    KTG_ENV=.venv
    if [ -n "${VIRTUAL_ENV:-}" ]; then
        # The project venv itself, activated, is still the project venv.
        local active project=""
        active=$(cd "$VIRTUAL_ENV" 2>/dev/null && pwd -P || true)
        if [ -d .venv ]; then project=$(cd .venv && pwd -P); fi
        if [ -z "$project" ] || [ "$active" != "$project" ]; then
            KTG_ENV_KIND=venv
            KTG_ENV=$VIRTUAL_ENV
        fi
    elif [ -n "${CONDA_PREFIX:-}" ] && [ "${CONDA_DEFAULT_ENV:-}" != base ] \
        && [ ! -d "$CONDA_PREFIX/condabin" ]; then
        # conda's base env (CONDA_DEFAULT_ENV=base; the only one with condabin/) is often active
        # in every shell without anyone asking: ktg keeps out of it and uses .venv.
        KTG_ENV_KIND=conda
        KTG_ENV=$CONDA_PREFIX
    fi
    KTG_PY=$KTG_ENV/bin/python
}

ktg_env_select
