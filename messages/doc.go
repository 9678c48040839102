// Package messages holds Hive's wire vocabulary: hive.proto and the Go code
// protoc-gen-go generates from it (run `make proto` after editing the .proto).
//
// It imports protobuf only and sits at the bottom of the dependency order.
// The generated types carry no behaviour; helpers here are small and pure,
// and Sink, the one interface every package on the request path shares
// (actors call it, bus and gateway implement it), lives here for that reason.
package messages
