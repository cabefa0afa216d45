#!/usr/bin/env bash
# Builds the real servers the live tests talk to, into the toolflow cache, when asked
# (it is never part of .ci/run: the C++ build takes about 12 minutes on two cores):
#   - llama.cpp's `llama-server`, from the llama.cpp that llama-cpp-python's sdist vendors;
#   - llama-cpp-python's own server, in a venv, using the libllama.so built above;
#   - `llama-bench` and `llama-batched-bench`, which the `local` bench runs beside its own figures.
# Then `cargo test -p toolflow-llm --test live_servers` runs against both servers.
# Needs cmake, ninja, a C++ compiler and pip (cmake and ninja come from pip if absent).
set -euo pipefail
VERSION=0.3.36
CACHE="${TOOLFLOW_CACHE_DIR:-$HOME/.cache/toolflow}"
DIR="$CACHE/llama-cpp"
mkdir -p "$DIR" && cd "$DIR"
if [ ! -d "llama_cpp_python-$VERSION" ]; then
  python3 -m pip download --no-deps --no-binary llama-cpp-python "llama-cpp-python==$VERSION" -d sdist
  tar xzf "sdist/llama_cpp_python-$VERSION.tar.gz"
fi
# pip --user puts them here, which may not be on PATH.
export PATH="$(python3 -m site --user-base)/bin:$PATH"
command -v cmake >/dev/null && command -v ninja >/dev/null || python3 -m pip install --user cmake ninja
if [ ! -f build/.built ]; then
  cmake -S "llama_cpp_python-$VERSION/vendor/llama.cpp" -B build -G Ninja \
    -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
    -DGGML_NATIVE=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON
  nice -n 10 cmake --build build -j"$(nproc)" --target llama-server llama-bench llama-batched-bench
  touch build/.built
fi
if [ ! -x pyenv/bin/python ]; then
  python3 -m venv pyenv
  # The Python package without its own C++ build: it loads build/bin/libllama.so
  # through LLAMA_CPP_LIB_PATH.
  CMAKE_ARGS="-DLLAMA_BUILD=OFF -DLLAVA_BUILD=OFF" pyenv/bin/pip install "./llama_cpp_python-$VERSION[server]"
fi
echo "built: $DIR/build/bin/llama-server and $DIR/pyenv (llama-cpp-python $VERSION)"
