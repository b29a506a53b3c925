package pluginwire

// The generated code is committed because CI has no protoc. Run
// `go generate ./internal/pluginwire` after editing the .proto.
//go:generate protoc -I ../../plugin/proto --go_out=pb --go_opt=paths=source_relative --go-grpc_out=pb --go-grpc_opt=paths=source_relative ../../plugin/proto/handler.proto
