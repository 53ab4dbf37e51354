#!/usr/bin/env bash
# Regenerates the Swift code of the CRI (Protos/runtime/v1/api.proto) and of crisp's own API
# (Protos/crisp/v1/images.proto) into Sources/CRIAPI.
# Builds the two protoc plugins from the resolved packages in their own scratch folder.
# CI never runs this: the generated files are committed.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v protoc >/dev/null || apt-get install -y -qq protobuf-compiler
swift build -c release --scratch-path .build-plugins --product protoc-gen-swift
swift build -c release --scratch-path .build-plugins --product protoc-gen-grpc-swift-2
bin=$(swift build -c release --scratch-path .build-plugins --show-bin-path)
out=Sources/CRIAPI
rm -f "$out"/*.pb.swift "$out"/*.grpc.swift
protoc -I Protos \
  --plugin=protoc-gen-swift="$bin/protoc-gen-swift" \
  --plugin=protoc-gen-grpc-swift-2="$bin/protoc-gen-grpc-swift-2" \
  --swift_out=Visibility=Public,FileNaming=DropPath:"$out" \
  --grpc-swift-2_out=Visibility=Public,Server=true,Client=true,FileNaming=DropPath:"$out" \
  runtime/v1/api.proto crisp/v1/images.proto
wc -l "$out"/*.swift
