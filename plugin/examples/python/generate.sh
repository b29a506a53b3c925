#!/bin/sh
# Regenerates the committed Python stubs in gen/ from plugin/proto/handler.proto
# (cronfleet's protocol) and proto/*.proto (gRPC health, go-plugin's services).
# Run it after editing any of them. Needs protoc (Debian: protobuf-compiler)
# for the messages and python3-grpc-tools for the service stubs; running the
# plugin needs neither, only python3-grpcio and python3-protobuf.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
rm -rf gen && mkdir gen
protos="../../proto/handler.proto proto/health.proto proto/go_plugin.proto"
includes="-I ../../proto -I proto"
# shellcheck disable=SC2086
protoc $includes --python_out=gen $protos
# shellcheck disable=SC2086
/usr/bin/python3 -m grpc_tools.protoc $includes -I /usr/include --grpc_python_out=gen $protos
