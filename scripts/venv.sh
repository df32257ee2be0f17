# Sourced by the install scripts: `make_venv DIR` makes a fresh virtualenv at DIR,
# installing python3-venv first where Debian's python3 lacks it (ensurepip).
make_venv() {
    rm -rf "$1"
    if ! python3 -m venv "$1" >/dev/null 2>&1; then
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq && $sudo apt-get install -y -qq python3-venv >/dev/null
        rm -rf "$1"
        python3 -m venv "$1"
    fi
}
