package bus

import "errors"

// Sentinel errors of package bus, matched with errors.Is.
var (
	// ErrDecode marks a body that is not a valid message in its encoding.
	ErrDecode = errors.New("decode")

	// ErrInvalidName marks a node, model or other subject token that would
	// break the subject hierarchy (empty, a dot, a space, a wildcard...).
	ErrInvalidName = errors.New("invalid name")

	// ErrPortInUse marks an embedded server that could not listen because
	// its port is taken, usually by another NATS server or hive-node.
	ErrPortInUse = errors.New("port in use")

	// ErrInvalidFault marks a FaultSpec a ChaosHandler refuses; the
	// injecting client gets bad_request/invalid_fault with the error.
	ErrInvalidFault = errors.New("invalid fault")

	// ErrAbandoned marks an Ingress.Stop whose context ended while requests
	// were still being served; each of them got a node_stopping reply.
	ErrAbandoned = errors.New("in-flight requests abandoned")
)
