#!/bin/sh
# Build ModelMux, the chosen plugins and every dependency as wheels, for an offline install.
#
#   deploy/build-wheels.sh PLUGINS OUTDIR
#
# PLUGINS: names separated by commas or spaces, each a directory under plugins/ or its short
# name (vertex, vllm, azure, bedrock, redis, web-search, file-search), optionally with extras (azure[entra]); "all" for
# every plugin, "" or "none" for the host alone. MODELMUX_EXTRAS (e.g. otel) adds the host's
# extras. Needs uv and a Python with pip (UV, PYTHON override them). Runs from the repository
# root: the Dockerfile's build stage and tests/deploy/test_ship_image_recipe.py both call it there.
#
# OUTDIR receives the wheels, dependencies.txt (the pinned set) and requirements.txt naming what
# to install:  uv pip install --no-index --find-links OUTDIR -r OUTDIR/requirements.txt
set -eu

if [ "$#" -ne 2 ]; then
    echo "usage: $0 PLUGINS OUTDIR   (e.g. $0 vertex,vllm,redis /wheels)" >&2
    exit 2
fi
plugins=$(printf '%s' "$1" | tr ',' ' ')
mkdir -p "$2"
out=$(cd "$2" && pwd)
uv=${UV:-uv}
python=${PYTHON:-python3}
# Build with the interpreter that will run the wheels, never one uv would download.
export UV_PYTHON_DOWNLOADS=never

if [ "$plugins" = "all" ]; then
    plugins=$(cd plugins && for d in */; do [ -f "$d/pyproject.toml" ] && printf '%s ' "${d%/}"; done)
fi

# Each entry: directory, distribution name, extras.
host_extras=${MODELMUX_EXTRAS:+[$MODELMUX_EXTRAS]}
entries=". modelmux $host_extras"
for item in $plugins; do
    [ "$item" = "none" ] && continue
    name=${item%%\[*}
    extras=${item#"$name"}
    dir=
    for candidate in "$name" "modelmux-provider-$name" "modelmux-tool-$name" "modelmux-$name"; do
        if [ -f "plugins/$candidate/pyproject.toml" ]; then dir=$candidate; break; fi
    done
    if [ -z "$dir" ]; then
        echo "build-wheels: no plugin '$name' under plugins/. Known: $(ls plugins | tr '\n' ' ')" >&2
        exit 2
    fi
    # A plugin directory is named after its distribution (tests/deploy checks it).
    entries="$entries
plugins/$dir $dir $extras"
done

: > "$out/requirements.txt"
: > "$out/local.in"
no_emit=
echo "$entries" | while read -r dir dist extras; do
    "$uv" build --quiet --wheel --python "$python" --out-dir "$out" "$dir"
    wheel=$(ls "$out/$(echo "$dist" | tr - _)"-*.whl)
    printf '%s%s @ file://%s\n' "$dist" "$extras" "$wheel" >> "$out/local.in"
    printf '%s%s\n' "$dist" "$extras" >> "$out/requirements.txt"
done
for dist in $(sed 's/[[ ].*//' "$out/requirements.txt"); do no_emit="$no_emit --no-emit-package $dist"; done

# One resolution for the host and the plugins together, then every dependency as a wheel
# (downloaded, or built from its sdist), so the runtime stage installs with --no-index.
# shellcheck disable=SC2086  # $no_emit is a list of options
"$uv" pip compile --quiet --no-header --no-annotate --python "$python" $no_emit \
    "$out/local.in" -o "$out/dependencies.txt"
"$python" -m pip wheel --quiet --no-deps --no-cache-dir --progress-bar off --wheel-dir "$out" \
    -r "$out/dependencies.txt"
rm "$out/local.in"
echo "build-wheels: $(ls "$out"/*.whl | wc -l) wheels in $out; to install: $(tr '\n' ' ' < "$out/requirements.txt")"
