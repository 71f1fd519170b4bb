#!/bin/sh
# Regenerates the Python message classes from proto/ (Debian: apt-get install protobuf-compiler).
# The generated files are committed so the device runs without protoc.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
protoc -I "$here/../../proto" --python_out="$here/vitalflow_pb" "$here"/../../proto/*.proto
